"""bpir.datasets (digits, IDX/MNIST reader) and cross_entropy's out-of-range labels."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest
from conftest import BACKENDS

import bpir
import bpir.numpy as bnp
from bpir.datasets import digits, mnist, read_idx

pytest.importorskip("sklearn")


def test_digits_split_is_fixed_stratified_float32():
    (xtr, ytr), (xte, yte) = digits()
    assert xtr.dtype == np.float32 and ytr.dtype == np.int64
    assert xtr.shape == (1438, 64) and xte.shape == (359, 64)
    assert 0.0 <= xtr.min() and xtr.max() <= 1.0
    assert set(np.bincount(yte)) <= {35, 36, 37}  # every class keeps ~20% for testing
    (xtr2, ytr2), (xte2, yte2) = digits()
    np.testing.assert_array_equal(xte, xte2)
    np.testing.assert_array_equal(ytr, ytr2)
    # train and test are disjoint and together are the whole set
    from sklearn.datasets import load_digits

    allx = (load_digits().data / 16).astype(np.float32)
    rows = {r.tobytes() for r in np.concatenate([xtr, xte])}
    assert rows == {r.tobytes() for r in allx}


def test_digits_as_images():
    (xtr, _), (xte, _) = digits(image=True)
    assert xtr.shape[1:] == (1, 8, 8) and xte.shape == (359, 1, 8, 8)


def _write_idx(path, array, code):
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    raw = header + array.astype(array.dtype.newbyteorder(">")).tobytes()
    if str(path).endswith(".gz"):
        with gzip.open(path, "wb") as f:
            f.write(raw)
    else:
        path.write_bytes(raw)


def test_mnist_reads_local_idx_files(tmp_path):
    rng = np.random.default_rng(0)
    tr_img, te_img = (
        rng.integers(0, 256, (5, 28, 28), dtype=np.uint8),
        rng.integers(0, 256, (3, 28, 28), dtype=np.uint8),
    )
    tr_lab, te_lab = rng.integers(0, 10, 5, dtype=np.uint8), rng.integers(0, 10, 3, dtype=np.uint8)
    _write_idx(tmp_path / "train-images-idx3-ubyte", tr_img, 0x08)
    _write_idx(tmp_path / "train-labels-idx1-ubyte.gz", tr_lab, 0x08)
    _write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", te_img, 0x08)
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte", te_lab, 0x08)
    (xtr, ytr), (xte, yte) = mnist(tmp_path)
    assert xtr.dtype == np.float32 and ytr.dtype == np.int64
    np.testing.assert_array_equal(xtr, (tr_img / 255.0).astype(np.float32))
    np.testing.assert_array_equal(yte, te_lab)
    assert xte.shape == (3, 28, 28)


def test_read_idx_other_dtypes_and_bad_files(tmp_path):
    a = np.arange(6, dtype=np.int32).reshape(2, 3) - 3
    _write_idx(tmp_path / "a.idx", a, 0x0C)
    np.testing.assert_array_equal(read_idx(tmp_path / "a.idx"), a)
    (tmp_path / "bad.idx").write_bytes(b"\x01\x02\x03\x04")
    with pytest.raises(ValueError, match="not an IDX file"):
        read_idx(tmp_path / "bad.idx")
    (tmp_path / "short.idx").write_bytes((tmp_path / "a.idx").read_bytes()[:-4])
    with pytest.raises(ValueError, match=r"says \(2, 3\)"):
        read_idx(tmp_path / "short.idx")
    with pytest.raises(FileNotFoundError, match="local MNIST files only"):
        mnist(tmp_path / "missing")


def test_cross_entropy_labels_out_of_range_eager_error():
    logits = np.zeros((3, 4), np.float32)
    with pytest.raises(ValueError, match=r"labels\[1\] = 4 is outside \[0, 4\)"):
        bnp.cross_entropy(logits, np.array([0, 4, 1]))
    with pytest.raises(ValueError, match=r"labels\[2\] = -1"):
        bnp.cross_entropy(logits, np.array([0, 1, -1]))
    with pytest.raises(TypeError, match="integers"):
        bnp.cross_entropy(logits, np.array([0.0, 1.0, 1.0]))


@pytest.mark.parametrize("backend", [b for b in BACKENDS if b != "numba-cuda"])
def test_cross_entropy_labels_out_of_range_compiled_nan_everywhere(backend):
    """Compiled, labels are run-time data: every backend gives NaN for the loss and for the
    gradient rows of the bad samples, and the right numbers for in-range labels."""
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((4, 3)).astype(np.float32)
    f = bpir.compile(lambda lg, y: bnp.cross_entropy(lg, y), backend)
    g = bpir.compile(bpir.grad(lambda lg, y: bnp.cross_entropy(lg, y)), backend)
    good = np.array([0, 2, 1, 1])
    np.testing.assert_allclose(f(logits, good), bnp.cross_entropy(logits, good), rtol=1e-6)
    for bad in (np.array([0, 2, 1, 3]), np.array([0, 2, 1, -1])):
        assert np.isnan(f(logits, bad))
        grads = g(logits, bad)
        assert np.isnan(grads[3]).all() and np.isfinite(grads[:3]).all()
