"""The numba backend's content-addressed kernel cache: a kernel body is compiled once whatever
model or position it comes from, on disk across processes and in memory when the disk cache
cannot be used; counted through ``kernel_cache.STATS``, not timed."""

from __future__ import annotations

import sys
import warnings

import numpy as np
import pytest
from conftest import assert_close

import bpir
from bpir import cache

pytestmark = pytest.mark.skipif("numba" not in bpir.backends(), reason="numba not installed")

X = np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4)
W = np.linspace(-1, 1, 20, dtype=np.float32).reshape(4, 5)


def _model(a: float, b: float):
    """Two kernels split by a matmul: tanh(x * a) + 1 on x's shape, tanh(. * b) on the result's."""
    return lambda x, w: np.tanh((np.tanh(x * a) + 1.0) @ w * b)


def _compile(a: float, b: float) -> tuple[dict, list]:
    """Compile and check the model; the kernel counts this compile added, and its kernel modules."""
    from bpir.backends.numba import kernel_cache

    before = dict(kernel_cache.STATS)
    f = bpir.compile(_model(a, b), backend="numba", example_args=(X, W))
    assert_close(f(X, W), _model(a, b)(X, W), "float32")
    added = {k: kernel_cache.STATS[k] - before.get(k, 0) for k in ("compiled", "loaded", "reused")}
    return added, f._current().run.kernel_modules


def _forget(modules) -> None:
    """Drop the kernel modules from this process, as if it were a new one (disk cache kept)."""
    for m in modules:
        sys.modules.pop(m.__name__, None)


def test_models_sharing_a_kernel_compile_it_once_on_disk(tmp_path, monkeypatch):
    monkeypatch.setenv("BPIR_CACHE_DIR", str(tmp_path))
    added, modules = _compile(1.5, 2.5)
    assert added == {"compiled": 2, "loaded": 0, "reused": 0}
    _forget(modules)
    added, modules2 = _compile(1.5, 3.5)  # the first kernel shared, the second changed
    assert added == {"compiled": 1, "loaded": 1, "reused": 0}
    assert modules2[0].__name__ == modules[0].__name__ != modules2[1].__name__
    _forget(modules2)
    added, _ = _compile(1.5, 2.5)  # both kernels on disk, sealed by the processes that wrote them
    assert added == {"compiled": 0, "loaded": 2, "reused": 0}


def test_models_sharing_a_kernel_compile_it_once_in_a_process(tmp_path, monkeypatch):
    monkeypatch.setenv("BPIR_CACHE_DIR", str(tmp_path))
    _compile(1.25, 2.25)
    added, _ = _compile(1.25, 3.25)
    assert added == {"compiled": 1, "loaded": 0, "reused": 1}


def test_kernels_compiled_in_memory_are_shared_too(tmp_path, monkeypatch):
    monkeypatch.setattr(cache, "_warned", set())
    path = tmp_path / "file"
    path.write_text("not a folder")
    monkeypatch.setenv("BPIR_CACHE_DIR", str(path))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", cache.CacheWarning)
        added, modules = _compile(1.75, 2.75)
        assert added == {"compiled": 2, "loaded": 0, "reused": 0}
        assert all(getattr(m, "__file__", None) is None for m in modules)
        added, _ = _compile(1.75, 3.75)
    assert added == {"compiled": 1, "loaded": 0, "reused": 1}


def test_split_names_every_kernel_once():
    from bpir.backends.numba.backend import generate
    from bpir.backends.numba.kernel_cache import KERNEL, split

    graph = bpir.optimize(bpir.trace(_model(0.5, 0.75), X, W))
    source = generate(graph)[0]
    header, bodies = split(source)
    assert sorted(bodies) == ["fused_1", "fused_2"]
    assert "def fused_" not in header and "@njit(parallel=" not in header
    for name, body in bodies.items():
        assert body.count(f"def {KERNEL}(") == 1 and "fused_" not in body
        assert body.replace(f"def {KERNEL}(", f"def {name}(") in source
