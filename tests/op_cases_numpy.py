"""Op cases for the shared suite (tests/test_ops.py): NumPy functions beyond the basic ops
(array API standard core + linalg). Cases group a few related functions each, so one compile
covers several; sizes are tiny for the CUDA simulator."""

from __future__ import annotations

import numpy as np
from op_cases import Case, _ints, _n, args


def _u(lo, hi, *shape):
    return lambda rng, dt: rng.uniform(lo, hi, size=shape).astype(dt)


def _spd(x):
    """A well-conditioned symmetric positive definite matrix built from x."""
    return x @ x.T + 3.0 * np.eye(x.shape[0], dtype=x.dtype)


def _well(x):
    return x + 4.0 * np.eye(x.shape[-1], dtype=x.dtype)


def _special(rng, dt):
    x = rng.standard_normal((3, 4)).astype(dt)
    x[0, 0], x[1, 1], x[2, 2], x[0, 3] = np.nan, np.inf, -np.inf, -0.0
    return (x,)


def _with_zero(rng, dt):
    x = rng.standard_normal((2, 3)).astype(dt)
    x[1, 1] = 0.0
    return (x,)


def _sorted_and_values(rng, dt):
    return np.sort(rng.standard_normal(6)).astype(dt), rng.standard_normal((2, 3)).astype(dt)


def _nonzero_ints(rng, dt):
    return (rng.choice(np.array([-3, -2, -1, 1, 2, 3]), size=(3, 4)),)


def _mask(rng, dt):
    x = rng.standard_normal((3, 4)).astype(dt)
    m = rng.standard_normal((3, 4)) > -0.3
    m[:, 0] = True  # no fully masked row
    return x, m


def _reductions(x, m):
    return (
        np.sum(x, axis=1, where=m),
        np.mean(x, axis=0, where=m),
        np.sum(x, initial=10.0),
        np.max(x, axis=1, initial=0.5),
        np.min(x, axis=0, where=m, initial=2.0),
        np.var(x, axis=1, ddof=1),
        np.std(x, axis=0, correction=1),
        np.std(x, where=m),
        np.prod(x, axis=1, where=m),
    )


def _shapes(x):
    a, b = np.broadcast_arrays(x[:1], x)
    return (
        np.moveaxis(x[None], 0, 2), np.swapaxes(x, 0, 1), np.stack(np.unstack(x, axis=1), axis=0), a * b,
        np.atleast_2d(x[0]), np.atleast_3d(x), np.atleast_1d(x[0, 0]), np.squeeze(np.expand_dims(x, (0, 2))),
        np.reshape(x, shape=(4, 3)), np.transpose(x, axes=(1, 0)), np.hstack([x, x]), np.vstack([x, x[:1]]),
        np.concatenate([x, x], axis=None), np.matrix_transpose(x),
    )  # fmt: skip


def _layout(x):
    return (
        np.flip(x, 0), np.flip(x), np.roll(x, 1, axis=1), np.roll(x, -2), np.roll(x, (1, 2), axis=(0, 1)),
        np.repeat(x, 2, axis=0), np.repeat(x, [1, 2, 0, 1], axis=1), np.repeat(x, 2), np.tile(x, (2, 1)),
        np.tile(x[0], 2), np.take(x, [2, 0, 2], axis=1), np.take(x, [5, 1]), np.tril(x), np.triu(x, 1),
        np.diagonal(x), np.diagonal(x, 1), np.trace(x), np.diag(x[0]), np.diag(x[0], -1), np.diag(x),
    )  # fmt: skip


def _products(a, b):
    return (
        np.tensordot(a, b, axes=([1], [0])), np.tensordot(a, a, axes=2), np.vecdot(a, a), np.outer(a[0], b[:, 0]),
        np.inner(a, a), np.einsum("ii->i", a[:, :2]), np.einsum("ii", a[:, :2]), np.linalg.vecdot(a, a, axis=0),
        np.linalg.outer(a[0], a[1]), np.linalg.trace(a[:, :3]), np.linalg.diagonal(a), np.vdot(a, a),
        np.cross(a[:, :3], b.T[:3, :3]),
    )  # fmt: skip


def _linalg(x, b):
    a = _well(x)
    sign, logdet = np.linalg.slogdet(a)
    return (np.linalg.inv(a), np.linalg.solve(a, b), np.linalg.solve(a, b[:, 0]), np.linalg.det(a), sign * logdet,
            np.linalg.matrix_power(a, 3), np.linalg.matrix_power(a, -2), np.linalg.solve(a, a))  # fmt: skip


def _decompositions(x):
    q, r = np.linalg.qr(x)
    w, v = np.linalg.eigh(x[:3])  # reads the lower triangle only, as NumPy
    return np.linalg.cholesky(_spd(x[:3])), q, r, w, v * v, np.linalg.eigvalsh(x[1:])


def _norms(x):
    la = np.linalg
    return (
        la.svdvals(x), la.norm(x), la.norm(x, "nuc"), la.norm(x, 2), la.norm(x, -2), la.norm(x, 1), la.norm(x, np.inf),
        la.norm(x, -np.inf, axis=(1, 0)), la.norm(x, axis=0), la.norm(x[0], 3), la.vector_norm(x, ord=np.inf, axis=1),
        la.vector_norm(x, ord=1, keepdims=True), la.matrix_norm(x, ord="fro"), la.matrix_norm(x, ord=-1),
        la.norm(x, "fro", keepdims=True), la.svd(x, full_matrices=False)[1],
    )  # fmt: skip


# fmt: off
CASES: list[Case] = [
    Case("inverse_trig", lambda x: np.stack([np.arcsin(x), np.arccos(x), np.arctan(x), np.arctanh(x), np.tan(x)]),
         args(_u(-0.8, 0.8, 3, 4))),
    Case("hyperbolic", lambda x: np.stack([np.sinh(x), np.cosh(x), np.arcsinh(x), np.arccosh(np.abs(x) + 1.5)]),
         args(_n(3, 4))),
    Case("log2_log10_exp2", lambda x: np.stack([np.log2(x), np.log10(x), np.exp2(x), np.deg2rad(x)]),
         args(_n(3, 4, low=0.5))),
    Case("atan2_hypot_logaddexp", lambda x, y: np.stack([np.arctan2(x, y), np.hypot(x, y), np.logaddexp(x, y),
                                                          np.copysign(x, y)]),
         args(_n(3, 4), _n(3, 4)), argnums=(0, 1)),
    Case("rounding", lambda x: np.stack([np.floor(x), np.ceil(x), np.trunc(x), np.rint(x), np.round(x, 1)]) * x,
         args(_u(-3, 3, 3, 4))),
    Case("floordiv_mod", lambda x, y: np.stack([x // y, x % y, np.floor_divide(x, 0.7), np.remainder(x, -0.7),
                                                 3.0 // y, 2.5 % y]),
         args(_u(-3, 3, 3, 4), _u(0.5, 2, 3, 4)), argnums=(0, 1)),
    Case("int_arith_bitwise", lambda i, j: np.stack([i // j, i % j, (i & j) | (i ^ 3), ~i, i << 1, i >> 1,
                                                      np.divmod(i, j)[1], np.floor(i), np.sign(i)]),
         args(_ints(9, 3, 4), lambda rng, dt: rng.integers(1, 4, size=(3, 4))), grad=False, dtypes=("float64",)),
    Case("reciprocal_int", lambda i: np.reciprocal(i) + np.rint(i).astype(np.int64), _nonzero_ints, grad=False,
         dtypes=("float64",)),
    Case("classify", lambda x: np.stack([np.isnan(x), np.isinf(x), np.isfinite(x), np.signbit(x),
                                         np.isfinite(np.ones((3, 4), np.int64) * 2) & (x == x)]),
         _special, grad=False),
    Case("logical_xor_isin_isclose", lambda x, y: (np.logical_xor(x > 0, y > 0), (x > 0) ^ (y > 0),
                                                   np.isin(np.floor(x * 2), [0.0, 1.0, -1.0]), np.isclose(x, x + 1e-9)),
         args(_n(3, 4), _n(3, 4)), grad=False),
    Case("layout_functions", _layout, args(_n(3, 4)), dtypes=("float64",)),
    Case("shape_functions", _shapes, args(_n(3, 4)), dtypes=("float64",)),
    Case("meshgrid", lambda a, b: [x * y for x, y in [np.meshgrid(a, b), np.meshgrid(a, b, indexing="ij"),
                                                       np.meshgrid(a, b, sparse=True)]],
         args(_n(3), _n(4)), argnums=(0, 1), dtypes=("float64",)),
    Case("argmin_argmax", lambda x: (np.argmin(x, axis=1), np.argmax(x, keepdims=True), np.argmin(x, keepdims=True),
                                     np.argmin(x), x.argmin(axis=0, keepdims=True)),
         args(_n(3, 4)), grad=False),
    Case("sort", lambda x: (np.sort(x, axis=1), np.sort(x, axis=0), np.sort(x, axis=None), np.sort(x.T)),
         args(_n(2, 3)), dtypes=("float64",)),
    Case("argsort_searchsorted", lambda s, v: (np.argsort(v, axis=0), np.argsort(np.round(v)), np.argsort(v, axis=None),
                                               np.searchsorted(s, v), np.searchsorted(s, v, side="right")),
         _sorted_and_values, grad=False),
    Case("cumsum_cumprod", lambda x: (np.cumsum(x, axis=1), np.cumprod(x, axis=0), np.cumsum(x),
                                      np.cumulative_sum(x, axis=1, include_initial=True),
                                      np.cumulative_prod(x, axis=0), x.cumsum(axis=0)),
         _with_zero, dtypes=("float64",)),
    Case("int_cumsum_prod", lambda i: (np.cumsum(i, axis=0), np.prod(i, axis=1), np.cumsum(i.astype(np.int32)),
                                       np.cumprod(i, axis=1)),
         args(_ints(4, 3, 4)), grad=False, dtypes=("float64",)),
    Case("prod_diff", lambda x: (np.prod(x, axis=1), x.prod(axis=0, keepdims=True), np.prod(x), np.diff(x, axis=1),
                                 np.diff(x, n=2, axis=1), np.diff(x, prepend=0.0, append=x[:, :1])),
         _with_zero, dtypes=("float64",)),
    Case("all_any_count", lambda x: (np.all(x > -1, axis=1), np.any(x > 1), np.count_nonzero(x > 0, axis=0),
                                     np.all(x > 0, where=x > 0.5), (x > 0).any(axis=0, keepdims=True)),
         args(_n(3, 4)), grad=False),
    Case("reduction_keywords", _reductions, _mask),
    Case("products", _products, args(_n(2, 3), _n(3, 2)), argnums=(0, 1), dtypes=("float64",)),
    Case("linalg_inv_solve_det", _linalg, args(_n(3, 3), _n(3, 2)), argnums=(0, 1)),
    Case("linalg_decompositions", _decompositions, args(_n(4, 3))),
    Case("norms", _norms, args(_n(2, 3))),
    Case("clip_keywords", lambda x: (np.clip(x, min=-0.5, max=0.5), np.clip(x, -0.2, None), x.clip(max=0.1)),
         args(_n(3, 4))),
]
# fmt: on
