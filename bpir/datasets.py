"""Small real data sets for examples and tests: scikit-learn's bundled 8x8 digits (no download)
and a reader for MNIST's IDX files that the user already has on disk (never downloads)."""

from __future__ import annotations

import gzip
import os
import struct

import numpy as np

_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
               0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}  # fmt: skip


def digits(test_fraction: float = 0.2, image: bool = False, seed: int = 0):
    """``(x_train, y_train), (x_test, y_test)``: scikit-learn's 1797 8x8 handwritten digits,
    pixels scaled to [0, 1] as float32 (flat ``(n, 64)``, or NCHW ``(n, 1, 8, 8)`` with
    ``image``), labels int64. The split is a fixed shuffle (``seed``), stratified by class so
    every class keeps ``test_fraction`` of its samples for testing."""
    try:
        from sklearn.datasets import load_digits
    except ImportError as e:  # an optional extra: pip install bpir[data]
        raise ImportError("bpir.datasets.digits needs scikit-learn: pip install 'bpir[data]'") from e
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must lie in (0, 1), got {test_fraction}")
    d = load_digits()
    x = (d.data / 16.0).astype(np.float32)
    y = d.target.astype(np.int64)
    rng = np.random.default_rng(seed)
    test = np.zeros(len(y), bool)
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        test[idx[: round(len(idx) * test_fraction)]] = True
    train_idx, test_idx = rng.permutation(np.flatnonzero(~test)), np.flatnonzero(test)
    if image:
        x = x.reshape(-1, 1, 8, 8)
    return (x[train_idx], y[train_idx]), (x[test_idx], y[test_idx])


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read one IDX file (optionally gzipped), the format of MNIST's distribution files."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise ValueError(f"{path}: not an IDX file (bad magic number {data[:4].hex()})")
    dtype, ndim = np.dtype(_IDX_DTYPES[data[2]]), data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"{path}: IDX header truncated")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    count = int(np.prod(shape, dtype=np.int64))
    if len(data) - header != count * dtype.itemsize:
        raise ValueError(f"{path}: IDX header says {shape} of {dtype} ({count * dtype.itemsize} bytes), "
                         f"the file holds {len(data) - header}")  # fmt: skip
    return np.frombuffer(data, dtype, count, header).reshape(shape).astype(dtype.newbyteorder("="))


_MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def mnist(folder: str | os.PathLike):
    """``(x_train, y_train), (x_test, y_test)`` from MNIST's four IDX files in ``folder``
    (plain or ``.gz``); images as float32 in [0, 1] of shape ``(n, 28, 28)``, labels int64.
    Reads local files only: bpir never downloads data."""
    out = []
    for split in ("train", "test"):
        images, labels = (_read_local(folder, name) for name in _MNIST_FILES[split])
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise ValueError(
                f"{folder}: {split} images {images.shape} and labels {labels.shape} do not match"
            )
        out.append(((images / 255.0).astype(np.float32), labels.astype(np.int64)))
    return tuple(out)


def _read_local(folder, name: str) -> np.ndarray:
    for candidate in (name, name + ".gz"):
        path = os.path.join(folder, candidate)
        if os.path.exists(path):
            return read_idx(path)
    raise FileNotFoundError(
        f"{os.path.join(folder, name)}[.gz] not found (bpir reads local MNIST files only)"
    )
