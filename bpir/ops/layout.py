"""Layout ops: they move or replicate elements without arithmetic."""

from __future__ import annotations

import numpy as np

from .. import attr_types as ty
from ..errors import ShapeError
from ..registry import REQUIRED, Kind, OpDef, register
from ..types import TensorType
from . import kernels


def _axis(axis: int, ndim: int) -> int:
    if not -ndim <= axis < ndim:
        raise ShapeError(f"axis {axis} out of range for rank {ndim}")
    return axis % ndim


def broadcast_shapes(*shapes: tuple[int, ...]) -> tuple[int, ...]:
    """NumPy's broadcasting of shapes, raising ShapeError with both shapes on a mismatch."""
    try:
        return tuple(np.broadcast_shapes(*shapes))
    except ValueError:
        raise ShapeError("shapes " + " and ".join(map(str, shapes)) + " do not broadcast") from None


# -- broadcast_to ----------------------------------------------------------------------------


def _broadcast_rule(types, attrs):
    (t,), shape = types, attrs["shape"]
    if broadcast_shapes(t.shape, shape) != shape:
        raise ShapeError(f"cannot broadcast {t.shape} to {shape}")
    return [TensorType(shape, t.dtype)]


register(OpDef("broadcast_to", Kind.BROADCAST, 1, _broadcast_rule, attrs={"shape": REQUIRED},
               attr_types={"shape": ty.SHAPE},
               vjp=lambda b, n, cts: [b.sum_to(cts[0], n.inputs[0].shape)], view=True, impl=np.broadcast_to))  # fmt: skip


# -- reshape, squeeze, expand_dims -----------------------------------------------------------


def _reshape_rule(types, attrs):
    (t,), shape = types, attrs["shape"]
    if int(np.prod(shape, dtype=np.int64)) != t.size:
        raise ShapeError(f"cannot reshape {t.shape} ({t.size} elements) to {shape}")
    return [TensorType(shape, t.dtype)]


def _reshape_back(b, node, cts):
    return [b.reshape(cts[0], node.inputs[0].shape)]


def _squeeze_rule(types, attrs):
    (t,) = types
    axes = {_axis(a, t.ndim) for a in attrs["axes"]}
    if any(t.shape[a] != 1 for a in axes):
        raise ShapeError(f"cannot squeeze axes {attrs['axes']} of shape {t.shape}")
    return [TensorType(tuple(d for i, d in enumerate(t.shape) if i not in axes), t.dtype)]


def _expand_rule(types, attrs):
    (t,) = types
    ndim = t.ndim + len(attrs["axes"])
    axes = {_axis(a, ndim) for a in attrs["axes"]}
    if len(axes) != len(attrs["axes"]):
        raise ShapeError(f"repeated axis in {attrs['axes']}")
    dims = iter(t.shape)
    return [TensorType(tuple(1 if i in axes else next(dims) for i in range(ndim)), t.dtype)]


def _as_reshape(b, node):
    return [b.reshape(node.inputs[0], node.outputs[0].shape)]


register(OpDef("reshape", Kind.LAYOUT, 1, _reshape_rule, attrs={"shape": REQUIRED}, vjp=_reshape_back,
               attr_types={"shape": ty.SHAPE}, view=True,
               impl=lambda x, shape: np.reshape(x, shape)))  # fmt: skip
register(OpDef("squeeze", Kind.LAYOUT, 1, _squeeze_rule, attrs={"axes": REQUIRED},
               vjp=_reshape_back, decompose=_as_reshape, attr_types={"axes": ty.INTS}, view=True,
               impl=lambda x, axes: np.squeeze(x, axis=axes)))  # fmt: skip
register(OpDef("expand_dims", Kind.LAYOUT, 1, _expand_rule, attrs={"axes": REQUIRED},
               vjp=_reshape_back, decompose=_as_reshape, attr_types={"axes": ty.INTS}, view=True,
               impl=lambda x, axes: np.expand_dims(x, axes)))  # fmt: skip


# -- transpose -------------------------------------------------------------------------------


def _transpose_rule(types, attrs):
    (t,), perm = types, attrs["perm"]
    if sorted(perm) != list(range(t.ndim)):
        raise ShapeError(f"perm {perm} is not a permutation of the axes of {t.shape}")
    return [TensorType(tuple(t.shape[p] for p in perm), t.dtype)]


def _transpose_vjp(b, node, cts):
    return [b.transpose(cts[0], tuple(np.argsort(node.attrs["perm"])))]


register(OpDef("transpose", Kind.LAYOUT, 1, _transpose_rule, attrs={"perm": REQUIRED},
               vjp=_transpose_vjp, attr_types={"perm": ty.AXES}, view=True,
               impl=lambda x, perm: np.transpose(x, perm)))  # fmt: skip


# -- slice and pad (each other's VJP) --------------------------------------------------------


def _slice_rule(types, attrs):
    (t,) = types
    start, stop, step = attrs["start"], attrs["stop"], attrs["step"]
    if not len(start) == len(stop) == len(step) == t.ndim:
        raise ShapeError(f"slice needs start/stop/step for each of the {t.ndim} axes of {t.shape}")
    shape = []
    for d, a, z, s in zip(t.shape, start, stop, step):
        if s < 1 or not 0 <= a <= z <= d:
            raise ShapeError(f"slice {start}:{stop}:{step} out of bounds for {t.shape}")
        shape.append(len(range(a, z, s)))
    return [TensorType(tuple(shape), t.dtype)]


def _slice_vjp(b, node, cts):
    (x,), (g,) = node.inputs, cts
    a = node.attrs
    lo = a["start"]
    interior = tuple(s - 1 for s in a["step"])
    hi = tuple(d - st - ((n - 1) * s + 1 if n else 0)
               for d, st, n, s in zip(x.shape, lo, g.shape, a["step"]))  # fmt: skip
    return [b.pad(g, lo=lo, hi=hi, interior=interior, value=0.0)]


def _slice_impl(x, start, stop, step):
    return x[tuple(slice(a, z, s) for a, z, s in zip(start, stop, step))]


def _pad_rule(types, attrs):
    (t,) = types
    lo, hi, interior = attrs["lo"], attrs["hi"], attrs["interior"]
    if not len(lo) == len(hi) == len(interior) == t.ndim or min((*lo, *hi, *interior), default=0) < 0:
        raise ShapeError(f"pad lo={lo} hi={hi} interior={interior} does not fit {t.shape}")
    shape = tuple(a + z + d + max(d - 1, 0) * i for d, a, z, i in zip(t.shape, lo, hi, interior))
    return [TensorType(shape, t.dtype)]


def _pad_vjp(b, node, cts):
    (x,), (g,) = node.inputs, cts
    a = node.attrs
    step = tuple(i + 1 for i in a["interior"])
    stop = tuple(lo + (d - 1) * s + 1 if d else lo for lo, d, s in zip(a["lo"], x.shape, step))
    return [b.slice(g, start=a["lo"], stop=stop, step=step)]


register(OpDef("slice", Kind.LAYOUT, 1, _slice_rule,
               attrs={"start": REQUIRED, "stop": REQUIRED, "step": REQUIRED}, vjp=_slice_vjp,
               attr_types={"start": ty.SHAPE, "stop": ty.SHAPE, "step": ty.Ints(lo=1)}, view=True,
               impl=_slice_impl))  # fmt: skip
register(OpDef("pad", Kind.LAYOUT, 1, _pad_rule,
               attrs={"lo": REQUIRED, "hi": REQUIRED, "interior": REQUIRED, "value": 0.0},
               attr_types={"lo": ty.SHAPE, "hi": ty.SHAPE, "interior": ty.SHAPE, "value": ty.FLOAT},
               vjp=_pad_vjp, impl=kernels.pad))  # fmt: skip


# -- concatenate -----------------------------------------------------------------------------


def _concat_rule(types, attrs):
    if not types:
        raise ShapeError("needs at least one operand")
    axis = _axis(attrs["axis"], types[0].ndim)
    first = types[0]
    for t in types[1:]:
        same = t.ndim == first.ndim and all(
            d == e for i, (d, e) in enumerate(zip(t.shape, first.shape)) if i != axis
        )
        if not same or t.dtype != first.dtype:
            raise ShapeError(f"operands {first} and {t} differ off axis {axis}")
    shape = list(first.shape)
    shape[axis] = sum(t.shape[axis] for t in types)
    return [TensorType(tuple(shape), first.dtype)]


def _concat_vjp(b, node, cts):
    (g,) = cts
    axis = node.attrs["axis"] % g.type.ndim
    grads, offset = [], 0
    for x in node.inputs:
        start = [0] * g.type.ndim
        stop = list(g.shape)
        start[axis], stop[axis] = offset, offset + x.shape[axis]
        grads.append(b.slice(g, start=tuple(start), stop=tuple(stop), step=(1,) * g.type.ndim))
        offset += x.shape[axis]
    return grads


register(OpDef("concatenate", Kind.LAYOUT, None, _concat_rule, attrs={"axis": REQUIRED},
               vjp=_concat_vjp, attr_types={"axis": ty.INT},
               impl=lambda *xs, axis: np.concatenate(xs, axis=axis)))  # fmt: skip
