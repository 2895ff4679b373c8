"""Shared test helpers: the backends under test and the verifier switched on."""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("BPIR_VERIFY", "1")
# CI has no GPU: the numba-cuda backend runs on Numba's CUDA simulator unless a run opts out
os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "1")

import bpir  # noqa: E402

# Backends that run on this machine; numba-cuda runs on Numba's CUDA simulator in CI.
BACKENDS = [b for b in ("numpy", "numba", "jax", "numba-cuda") if b in bpir.backends()]


@pytest.fixture(params=BACKENDS)
def backend(request):
    return request.param


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def assert_close(actual, expected, dtype):
    tol = {"float64": 1e-12, "float32": 2e-5, "float16": 2e-2}.get(np.dtype(dtype).name, 0)
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    assert actual.dtype == expected.dtype, (actual.dtype, expected.dtype)
    if expected.dtype.kind in "biu":
        np.testing.assert_array_equal(actual, expected)
    else:
        np.testing.assert_allclose(actual, expected, rtol=tol * 10, atol=tol)
