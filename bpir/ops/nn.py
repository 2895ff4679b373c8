"""Neural-network ops: 2-D pooling, gathers for integer labels, one_hot."""

from __future__ import annotations

import numpy as np

from .. import attr_types as ty
from ..errors import ShapeError
from ..registry import REQUIRED, Kind, OpDef, register
from ..types import TensorType, is_int, to_numpy_dtype
from . import kernels, windows

POOL_ATTRS = {"kernel": REQUIRED, "stride": REQUIRED, "padding": (0, 0)}
POOL_TYPES = {"kernel": ty.POSITIVE_PAIR, "stride": ty.POSITIVE_PAIR, "padding": ty.NONNEG_PAIR}


def pool_out_hw(hw, a) -> tuple[int, int]:
    out = []
    for d, k, s, p in zip(hw, a["kernel"], a["stride"], a["padding"]):
        if 2 * p > k:
            raise ShapeError(f"padding {a['padding']} exceeds half the kernel {a['kernel']}")
        n = (d + 2 * p - k) // s + 1
        if n < 1:
            raise ShapeError(f"pool kernel {a['kernel']} does not fit input {hw}")
        out.append(n)
    return tuple(out)


def _pool_rule(types, a):
    (x,) = types
    if x.ndim != 4:
        raise ShapeError(f"pooling wants NCHW input, got {x.shape}")
    return [TensorType((*x.shape[:2], *pool_out_hw(x.shape[2:], a)), x.dtype)]


def _max_pool_grad_rule(types, a):
    x, dy = types
    if _pool_rule([x], a)[0] != dy:
        raise ShapeError(f"cotangent {dy.shape} does not fit max_pool2d of {x.shape}")
    return [x]


def _avg_pool_grad_rule(types, a):
    (dy,) = types
    x = TensorType((*dy.shape[:2], *a["input_hw"]), dy.dtype)
    if _pool_rule([x], a)[0] != dy:
        raise ShapeError(f"cotangent {dy.shape} does not fit avg_pool2d of {x.shape}")
    return [x]


def _pool_attrs(node):
    return {k: node.attrs[k] for k in POOL_ATTRS}


def _max_pool_vjp(b, node, cts):
    # Each window's gradient goes to its first maximal element (row-major), as in PyTorch.
    return [b.max_pool2d_grad(node.inputs[0], cts[0], **_pool_attrs(node))]


def _max_pool_grad_vjp(b, node, cts):
    raise NotImplementedError("second-order gradients through max_pool2d are not supported")


def _avg_pool_vjp(b, node, cts):
    return [b.avg_pool2d_grad(cts[0], input_hw=node.inputs[0].shape[2:], **_pool_attrs(node))]


register(OpDef("max_pool2d", Kind.OTHER, 1, _pool_rule, attrs=dict(POOL_ATTRS), vjp=_max_pool_vjp,
               decompose=windows.decompose_max_pool2d, attr_types=POOL_TYPES, impl=kernels.max_pool2d))  # fmt: skip
register(OpDef("max_pool2d_grad", Kind.OTHER, 2, _max_pool_grad_rule, attrs=dict(POOL_ATTRS),
               vjp=_max_pool_grad_vjp, decompose=windows.decompose_max_pool2d_grad,
               attr_types=POOL_TYPES, impl=kernels.max_pool2d_grad))  # fmt: skip
# avg_pool2d counts padding in the divisor (PyTorch's count_include_pad=True default).
register(OpDef("avg_pool2d", Kind.OTHER, 1, _pool_rule, attrs=dict(POOL_ATTRS), vjp=_avg_pool_vjp,
               decompose=windows.decompose_avg_pool2d, attr_types=POOL_TYPES, impl=kernels.avg_pool2d))  # fmt: skip
register(OpDef("avg_pool2d_grad", Kind.OTHER, 1, _avg_pool_grad_rule,
               attrs={**POOL_ATTRS, "input_hw": REQUIRED},
               vjp=lambda b, n, cts: [b.avg_pool2d(cts[0], **_pool_attrs(n))],
               decompose=windows.decompose_avg_pool2d_grad,
               attr_types={**POOL_TYPES, "input_hw": ty.NONNEG_PAIR}, impl=kernels.avg_pool2d_grad))  # fmt: skip


# -- gathers ---------------------------------------------------------------------------------


def _take_rule(types, a):
    x, idx = types
    axis = a["axis"]
    if not is_int(idx.dtype):
        raise ShapeError(f"indices must be integers, got {idx.dtype}")
    if (
        idx.ndim != x.ndim
        or not 0 <= axis < x.ndim
        or any(d != e for i, (d, e) in enumerate(zip(x.shape, idx.shape)) if i != axis)
    ):
        raise ShapeError(f"indices {idx.shape} do not fit {x.shape} off axis {axis}")
    return [TensorType(idx.shape, x.dtype)]


def _scatter_rule(types, a):
    idx, upd = types
    if idx.shape != upd.shape or not is_int(idx.dtype):
        raise ShapeError(f"indices {idx} and updates {upd} must share a shape (integer indices)")
    if not 0 <= a["axis"] < idx.ndim:
        raise ShapeError(f"axis {a['axis']} out of range for rank {idx.ndim}")
    shape = list(idx.shape)
    shape[a["axis"]] = a["dim"]
    return [TensorType(tuple(shape), upd.dtype)]


def _take_vjp(b, node, cts):
    (x, idx), (g,) = node.inputs, cts
    axis = node.attrs["axis"]
    return [b.scatter_add_along_axis(idx, g, axis=axis, dim=x.shape[axis]), None]


def _scatter_vjp(b, node, cts):
    (idx, _), (g,) = node.inputs, cts
    return [None, b.take_along_axis(g, idx, axis=node.attrs["axis"])]


# Out-of-range indices are an error in NumPy; compiled backends do not check them.
register(OpDef("take_along_axis", Kind.OTHER, 2, _take_rule, attrs={"axis": REQUIRED},
               vjp=_take_vjp, attr_types={"axis": ty.INT},
               impl=lambda x, idx, axis: np.take_along_axis(x, idx, axis=axis)))  # fmt: skip
register(OpDef("scatter_add_along_axis", Kind.OTHER, 2, _scatter_rule,
               attrs={"axis": REQUIRED, "dim": REQUIRED}, vjp=_scatter_vjp,
               attr_types={"axis": ty.NONNEG, "dim": ty.NONNEG}, impl=kernels.scatter_add_along_axis))  # fmt: skip


def _one_hot_rule(types, a):
    (t,) = types
    if not is_int(t.dtype):
        raise ShapeError(f"labels must be integers, got {t.dtype}")
    return [TensorType((*t.shape, a["num_classes"]), a["dtype"])]


register(OpDef("one_hot", Kind.OTHER, 1, _one_hot_rule,
               attrs={"num_classes": REQUIRED, "dtype": "f32"}, differentiable=False,
               attr_types={"num_classes": ty.NONNEG, "dtype": ty.DTYPE},
               impl=lambda labels, num_classes, dtype: kernels.one_hot(labels, num_classes, to_numpy_dtype(dtype))))  # fmt: skip
