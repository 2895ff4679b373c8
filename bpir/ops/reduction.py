"""Reductions over static axes: reduce_sum, reduce_max, reduce_prod and argmax."""

from __future__ import annotations

import numpy as np

from .. import attr_types as ty
from ..errors import ShapeError
from ..registry import REQUIRED, Kind, OpDef, register
from ..types import TensorType, is_float


def check_axes(t: TensorType, axes) -> tuple[int, ...]:
    if list(axes) != sorted(set(axes)) or any(not 0 <= a < t.ndim for a in axes):
        raise ShapeError(f"axes {axes} must be sorted, unique and within the rank of {t.shape}")
    return tuple(axes)


def reduced_shape(shape, axes, keepdims) -> tuple[int, ...]:
    if keepdims:
        return tuple(1 if i in axes else d for i, d in enumerate(shape))
    return tuple(d for i, d in enumerate(shape) if i not in axes)


def _reduce_rule(types, attrs):
    (t,) = types
    axes = check_axes(t, attrs["axes"])
    return [TensorType(reduced_shape(t.shape, axes, attrs["keepdims"]), t.dtype)]


def _argmax_rule(types, attrs):
    (t,) = types
    axes = check_axes(t, (attrs["axis"],))
    return [TensorType(reduced_shape(t.shape, axes, attrs["keepdims"]), "i64")]


def _spread(b, g, node):
    """Broadcast a reduced cotangent back over the reduced axes of the node's input."""
    x = node.inputs[0]
    kept = reduced_shape(x.shape, node.attrs["axes"], True)
    return b.broadcast_to(b.reshape(g, kept), x.shape)


def _sum_vjp(b, node, cts):
    return [_spread(b, cts[0], node)]


def _max_vjp(b, node, cts):
    # The gradient flows to every maximal element; ties share it equally (JAX's convention).
    (x,), (y,), (g,) = node.inputs, node.outputs, cts
    if not is_float(x.dtype):
        return [None]
    hit = b.cast(b.eq(x, _spread(b, y, node)), x.dtype)
    count = b.reduce_sum(hit, axes=node.attrs["axes"], keepdims=True)
    share = b.div(b.reshape(g, count.shape), count)
    return [b.mul(hit, b.broadcast_to(share, x.shape))]


register(OpDef("reduce_sum", Kind.REDUCTION, 1, _reduce_rule,
               attrs={"axes": REQUIRED, "keepdims": False}, vjp=_sum_vjp,
               attr_types={"axes": ty.AXES, "keepdims": ty.BOOL},
               impl=lambda x, axes, keepdims: np.sum(x, axis=axes, keepdims=keepdims, dtype=x.dtype)))  # fmt: skip
register(OpDef("reduce_max", Kind.REDUCTION, 1, _reduce_rule,
               attrs={"axes": REQUIRED, "keepdims": False}, vjp=_max_vjp,
               attr_types={"axes": ty.AXES, "keepdims": ty.BOOL},
               impl=lambda x, axes, keepdims: np.max(x, axis=axes, keepdims=keepdims)))  # fmt: skip
register(OpDef("argmax", Kind.REDUCTION, 1, _argmax_rule,
               attrs={"axis": REQUIRED, "keepdims": False}, differentiable=False,
               attr_types={"axis": ty.NONNEG, "keepdims": ty.BOOL},
               impl=lambda x, axis, keepdims: np.argmax(x, axis=axis, keepdims=keepdims)))  # fmt: skip


def _prod_vjp(b, node, cts):
    # d prod / d x_i = the product of the other terms: exclusive scans from the left and from
    # the right multiplied (exact where x has zeros, unlike prod / x)
    (x,), (g,) = node.inputs, cts
    if not is_float(x.dtype):
        return [None]
    axes = node.attrs["axes"]
    kept = tuple(i for i in range(x.type.ndim) if i not in axes)
    perm = kept + tuple(axes)
    moved = b.transpose(x, perm)
    r = int(np.prod([x.shape[a] for a in axes], dtype=np.int64))
    rows = b.reshape(moved, (moved.type.size // max(r, 1), r))
    one = {"value": 1.0, "interior": (0, 0)}
    left = b.slice(b.pad(b.cumprod(rows, axis=1), lo=(0, 1), hi=(0, 0), **one),
                   start=(0, 0), stop=rows.shape, step=(1, 1))  # fmt: skip
    right = b.slice(b.pad(b.cumprod(rows, axis=1, reverse=True), lo=(0, 0), hi=(0, 1), **one),
                    start=(0, 1), stop=(rows.shape[0], r + 1), step=(1, 1))  # fmt: skip
    gcol = b.reshape(g, (rows.shape[0], 1))
    others = b.mul(b.mul(left, right), b.broadcast_to(gcol, rows.shape))
    return [b.transpose(b.reshape(others, moved.shape), tuple(np.argsort(perm)))]


register(OpDef("reduce_prod", Kind.REDUCTION, 1, _reduce_rule,
               attrs={"axes": REQUIRED, "keepdims": False}, vjp=_prod_vjp,
               attr_types={"axes": ty.AXES, "keepdims": ty.BOOL},
               impl=lambda x, axes, keepdims: np.prod(x, axis=axes, keepdims=keepdims, dtype=x.dtype)))  # fmt: skip
