"""Scans and orderings along one axis: cumsum, cumprod, argsort, searchsorted.

Each has a decomposition into matmul / compare / reduce ops for a backend without a library
call (the CUDA backend): quadratic in the axis length, meant for the short axes model code
scans (sort keys, a handful of bins)."""

from __future__ import annotations

import numpy as np

from .. import attr_types as ty
from ..errors import ShapeError
from ..registry import REQUIRED, Kind, OpDef, register
from ..types import TensorType


def _axis_rule(dtype=None):
    def infer(types, a):
        (t,) = types
        if not 0 <= a["axis"] < max(t.ndim, 1) or t.ndim == 0:
            raise ShapeError(f"axis {a['axis']} out of range for {t.shape}")
        if t.dtype == "bool" and dtype is None:
            raise ShapeError("scans need a numeric operand, got bool (cast it first)")
        return [TensorType(t.shape, dtype or t.dtype)]

    return infer


def to_last(b, x, axis):
    """Move ``axis`` last and flatten the rest: (rows, n), with the permutation to undo it."""
    perm = tuple(i for i in range(x.type.ndim) if i != axis) + (axis,)
    moved = b.transpose(x, perm)
    n = x.shape[axis]
    return b.reshape(moved, (moved.type.size // max(n, 1), n)), perm, moved.shape


def from_last(b, y, perm, moved_shape):
    return b.transpose(b.reshape(y, moved_shape), tuple(np.argsort(perm)))


def _tri(b, n, dtype, lower):
    """(n, n) constant: T[i, j] = 1 where i <= j (``lower``: i >= j)."""
    t = np.tril(np.ones((n, n))) if lower else np.triu(np.ones((n, n)))
    return b.const(t, dtype)


# -- cumsum / cumprod ------------------------------------------------------------------------


def _cumsum_vjp(b, node, cts):
    a = node.attrs
    return [b.cumsum(cts[0], axis=a["axis"], reverse=not a["reverse"])]


def _cumsum_decompose(b, node):
    # y[:, j] = sum_i x[:, i] T[i, j], T upper triangular (lower for a reverse scan)
    x, a = node.inputs[0], node.attrs
    rows, perm, shape = to_last(b, x, a["axis"])
    y = b.matmul(rows, _tri(b, x.shape[a["axis"]], x.dtype, lower=a["reverse"]))
    return [from_last(b, y, perm, shape)]


def _cumprod_vjp(b, node, cts):
    # d y_j / d x_i = prod_{k <= j, k != i} x_k for i <= j (reverse: k >= j): the scan of x with
    # x_i replaced by 1, one row per i. Quadratic, exact where x has zeros (y / x is not).
    x, a, (g,) = node.inputs[0], node.attrs, cts
    rows, perm, shape = to_last(b, x, a["axis"])
    m, n = rows.shape
    eye = b.const(np.eye(n, dtype=bool))
    held = b.where(b.broadcast_to(eye, (m, n, n)), b.scalar(1, x.dtype),
                   b.broadcast_to(b.reshape(rows, (m, 1, n)), (m, n, n)))  # fmt: skip
    c = b.cumprod(held, axis=2, reverse=a["reverse"])  # c[:, i, j]
    after = b.const(
        np.triu(np.ones((n, n), dtype=bool)) if not a["reverse"] else np.tril(np.ones((n, n), dtype=bool))
    )
    gr, _, _ = to_last(b, g, a["axis"])
    terms = b.where(b.broadcast_to(after, (m, n, n)), b.mul(c, b.broadcast_to(b.reshape(gr, (m, 1, n)), (m, n, n))),
                    b.scalar(0, x.dtype))  # fmt: skip
    return [from_last(b, b.reduce_sum(terms, axes=(2,)), perm, shape)]


def _cumprod_decompose(b, node):
    # y[:, j] = prod_i where(i <= j, x[:, i], 1)
    x, a = node.inputs[0], node.attrs
    rows, perm, shape = to_last(b, x, a["axis"])
    m, n = rows.shape
    keep = b.const(
        np.tril(np.ones((n, n), dtype=bool)) if not a["reverse"] else np.triu(np.ones((n, n), dtype=bool))
    )
    spread = b.broadcast_to(b.reshape(rows, (m, 1, n)), (m, n, n))  # [:, j, i]
    terms = b.where(b.broadcast_to(keep, (m, n, n)), spread, b.scalar(1, x.dtype))
    return [from_last(b, b.reduce_prod(terms, axes=(2,)), perm, shape)]


def _scan_impl(fn):
    """cumsum / cumprod in the operand's dtype (NumPy widens small integers); reverse by flips."""

    def impl(x, axis, reverse):
        if not reverse:
            return fn(x, axis=axis, dtype=x.dtype)
        return np.flip(fn(np.flip(x, axis), axis=axis, dtype=x.dtype), axis)

    return impl


SCAN_ATTRS = {"axis": REQUIRED, "reverse": False}
SCAN_TYPES = {"axis": ty.NONNEG, "reverse": ty.BOOL}
register(OpDef("cumsum", Kind.OTHER, 1, _axis_rule(), attrs=dict(SCAN_ATTRS), attr_types=dict(SCAN_TYPES), vjp=_cumsum_vjp,
               decompose=_cumsum_decompose, impl=_scan_impl(np.cumsum)))  # fmt: skip
register(OpDef("cumprod", Kind.OTHER, 1, _axis_rule(), attrs=dict(SCAN_ATTRS), attr_types=dict(SCAN_TYPES), vjp=_cumprod_vjp,
               decompose=_cumprod_decompose, impl=_scan_impl(np.cumprod)))  # fmt: skip


# -- argsort (stable, ascending) and searchsorted --------------------------------------------


def _argsort_decompose(b, node):
    # rank_i = #{j: x_j < x_i} + #{j < i: x_j == x_i}; the result at position k is the i of rank k
    x, axis = node.inputs[0], node.attrs["axis"]
    rows, perm, shape = to_last(b, x, axis)
    m, n = rows.shape
    xi = b.broadcast_to(b.reshape(rows, (m, n, 1)), (m, n, n))
    xj = b.broadcast_to(b.reshape(rows, (m, 1, n)), (m, n, n))
    earlier = b.broadcast_to(b.const(np.tril(np.ones((n, n), dtype=bool), -1)), (m, n, n))
    before = b.logical_or(b.lt(xj, xi), b.logical_and(b.eq(xj, xi), earlier))
    rank = b.reduce_sum(b.cast(before, "i64"), axes=(2,))  # (m, n_i)
    k = b.iota(shape=(m, n, n), axis=1, dtype="i64")  # [:, k, i]
    hit = b.eq(b.broadcast_to(b.reshape(rank, (m, 1, n)), (m, n, n)), k)
    i = b.iota(shape=(m, n, n), axis=2, dtype="i64")
    idx = b.reduce_sum(b.where(hit, i, b.scalar(0, "i64")), axes=(2,))
    return [from_last(b, idx, perm, shape)]


register(OpDef("argsort", Kind.OTHER, 1, _axis_rule("i64"), attrs={"axis": REQUIRED},
               attr_types={"axis": ty.NONNEG}, differentiable=False, decompose=_argsort_decompose,
               impl=lambda x, axis: np.argsort(x, axis=axis, stable=True).astype(np.int64)))  # fmt: skip


def _searchsorted_rule(types, a):
    s, v = types
    if s.ndim != 1 or s.dtype != v.dtype:
        raise ShapeError(f"needs a 1-D sorted array and values of one dtype, got {s} and {v}")
    if a["side"] not in ("left", "right"):
        raise ShapeError(f"side must be 'left' or 'right', got {a['side']!r}")
    return [TensorType(v.shape, "i64")]


def _searchsorted_decompose(b, node):
    # the insertion point counts the sorted entries before v (left: < v, right: <= v)
    s, v = node.inputs
    n, shape = s.shape[0], v.shape
    sv = b.broadcast_to(b.reshape(s, (1,) * len(shape) + (n,)), (*shape, n))
    vv = b.broadcast_to(b.reshape(v, (*shape, 1)), (*shape, n))
    below = b.lt(sv, vv) if node.attrs["side"] == "left" else b.le(sv, vv)
    return [b.reduce_sum(b.cast(below, "i64"), axes=(len(shape),))]


register(OpDef("searchsorted", Kind.OTHER, 2, _searchsorted_rule, attrs={"side": "left"},
               attr_types={"side": ty.OneOf("left", "right")}, differentiable=False, decompose=_searchsorted_decompose,
               impl=lambda s, v, side: np.searchsorted(s, v, side=side).astype(np.int64)))  # fmt: skip
