"""float16 through every backend, against NumPy's own float16 results, on edge values: zeros of
both signs, negatives, the largest finite value, subnormals, infinities, NaN and ties.

Exact ops must agree bit for bit (NaN where NumPy has NaN); transcendental ones within one
float16 ulp (NumPy computes them in float32 and rounds, a backend may round from float64).
Each group is one compiled function returning a dict, so a backend compiles it once."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import bpir
import bpir.numpy as bnp

EDGE = np.array([0.0, -0.0, 1.0, -1.0, 0.5, -2.5, 3.0, 65504.0, -65504.0, 6.1e-5, 1e-7, np.inf, -np.inf, np.nan],
                np.float16)  # fmt: skip
OTHER = np.roll(EDGE, 3)
EXPONENTS = np.array([2.0, 0.5, -1.0, 0.0, 3.0, -0.5, 1.0, 2.0, -1.0, 0.5, 2.0, -1.0, 0.0, 1.0], np.float16)

EXACT = {
    "neg": lambda x, y: -x,
    "abs": lambda x, y: np.abs(x),
    "sign": lambda x, y: np.sign(x),
    "add": lambda x, y: x + y,
    "sub": lambda x, y: x - y,
    "mul": lambda x, y: x * y,
    "div": lambda x, y: x / y,
    "maximum": np.maximum,
    "minimum": np.minimum,
    "maximum_tie": lambda x, y: np.maximum(x, x),
    "relu": lambda x, y: bnp.relu(x),
    "where": lambda x, y: np.where(x > y, x, y),
    "clip": lambda x, y: np.clip(x, -1.0, 2.0),
    "scalar_left": lambda x, y: 2.0 - x,
    "square": lambda x, y: x * x,
}
COMPARISONS = {
    "gt": lambda x, y: x > y, "ge": lambda x, y: x >= y, "lt": lambda x, y: x < y,
    "le": lambda x, y: x <= y, "eq": lambda x, y: x == y, "ne": lambda x, y: x != y,
    "eq_self": lambda x, y: x == x,
}  # fmt: skip
ROUNDED = {
    "exp": lambda x, y: np.exp(x), "log": lambda x, y: np.log(x), "sqrt": lambda x, y: np.sqrt(x),
    "tanh": lambda x, y: np.tanh(x), "sin": lambda x, y: np.sin(x), "cos": lambda x, y: np.cos(x),
    "expm1": lambda x, y: np.expm1(x), "log1p": lambda x, y: np.log1p(x),
    "reciprocal": lambda x, y: np.reciprocal(x), "sigmoid": lambda x, y: bnp.sigmoid(x),
    "pow": lambda x, y: x ** EXPONENTS,
}  # fmt: skip
FINITE = EDGE[np.isfinite(EDGE)]
REDUCTIONS = {  # inputs whose float16 sums are exact, so any summation order agrees
    "sum": lambda x: np.sum(np.array([1.0, -2.5, 0.5, 3.0], np.float16) * x[2:6]),
    "max": lambda x: np.max(x[:11]),
    "max_with_inf": lambda x: np.max(x[5:13]),
    "min_axis": lambda x: np.min(x[:12].reshape(3, 4), axis=1),
    "max_nan": lambda x: np.max(x),
    "argmax_ties": lambda x: np.argmax(np.array([1.0, 3.0, 3.0, -1.0], np.float16) * x[2]),
    "mean": lambda x: np.mean(x[2:7]),
    "matmul": lambda x: x[2:6].reshape(2, 2) @ x[3:7].reshape(2, 2),
}  # fmt: skip


def _group(fns):
    return lambda x, y: {name: f(x, y) for name, f in fns.items()}


def _assert_same(got, want, ulps: int) -> None:
    for name, w in want.items():
        g, w = np.asarray(got[name]), np.asarray(w)
        assert g.dtype == w.dtype and g.shape == w.shape, (name, g.dtype, w.dtype, g.shape, w.shape)
        if w.dtype.kind != "f":
            np.testing.assert_array_equal(g, w, err_msg=name)
            continue
        special = ~np.isfinite(w)
        np.testing.assert_array_equal(g[special], w[special], err_msg=f"{name}: inf/nan positions")
        with np.errstate(over="ignore"):  # the spacing above 65504 is inf; below it, 32
            spacing = np.minimum(np.spacing(np.abs(w[~special])).astype(np.float64), 32.0)
        tol = ulps * spacing
        err = np.abs(g[~special].astype(np.float64) - w[~special].astype(np.float64))
        assert np.all(err <= tol), (name, g, w)


@pytest.mark.parametrize(("group", "ulps"), [(EXACT, 0), (COMPARISONS, 0), (ROUNDED, 1)],
                         ids=["exact", "comparisons", "rounded"])  # fmt: skip
def test_float16_elementwise_edge_values(backend, group, ulps):
    fn = _group(group)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        want = fn(EDGE, OTHER)
        got = bpir.compile(fn, backend=backend, example_args=(EDGE, OTHER))(EDGE, OTHER)
    assert all(np.asarray(w).dtype in (np.float16, np.bool_) for w in want.values())
    _assert_same(got, want, ulps)


def test_float16_reductions_and_matmul(backend):
    fn = lambda x: {name: f(x) for name, f in REDUCTIONS.items()}  # noqa: E731
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        want = fn(EDGE)
        got = bpir.compile(fn, backend=backend, example_args=(EDGE,))(EDGE)
    _assert_same(got, want, 0)


def test_float16_gradient_is_float16(backend):
    """A float16 model differentiates in float16 (gradients keep the argument's dtype)."""
    x = np.array([-1.5, -0.0, 0.5, 2.0], np.float16)
    got = bpir.compile(
        bpir.grad(lambda x: np.sum(x * x * 0.5 + np.abs(x))), backend=backend, example_args=(x,)
    )(x)
    assert got.dtype == np.float16
    np.testing.assert_array_equal(got, x + np.sign(x))
