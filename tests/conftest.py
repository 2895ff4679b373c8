"""Shared test helpers: the backends under test and the verifier switched on."""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("BPIR_VERIFY", "1")
# CI has no GPU: the numba-cuda backend runs on Numba's CUDA simulator unless a run opts out
os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "1")

import bpir  # noqa: E402

# Every backend the test extra declares (numba, numba-cuda on the simulator, jax) must run
# here: a missing dependency fails the suite instead of silently shrinking the parametrised
# tests. BPIR_ALLOW_MISSING_BACKENDS=1 opts out (a deliberately partial install).
DECLARED_BACKENDS = ("numpy", "numba", "jax", "numba-cuda")
BACKENDS = [b for b in DECLARED_BACKENDS if b in bpir.backends()]
MISSING_BACKENDS = [b for b in DECLARED_BACKENDS if b not in BACKENDS]


def pytest_sessionstart(session):
    if MISSING_BACKENDS and os.environ.get("BPIR_ALLOW_MISSING_BACKENDS") != "1":
        raise pytest.UsageError(
            f"backends {MISSING_BACKENDS} are declared by the test extra but not available here "
            "(install bpir[test]; numba-cuda runs on NUMBA_ENABLE_CUDASIM=1); "
            "set BPIR_ALLOW_MISSING_BACKENDS=1 to run without them"
        )


def pytest_collection_modifyitems(config, items):
    """Tests marked ``slow`` run only with BPIR_RUN_SLOW=1 (the default suite stays fast)."""
    if os.environ.get("BPIR_RUN_SLOW") == "1":
        return
    skip = pytest.mark.skip(reason="slow: set BPIR_RUN_SLOW=1 to run")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


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
