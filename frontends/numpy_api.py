"""NumPy's API on tracers: ufuncs (``__array_ufunc__``), functions (``__array_function__``)
and array methods, each mapped onto bpir ops."""

from __future__ import annotations

import numpy as np

from bpir.errors import ShapeError, TraceError
from bpir.location import user_location
from bpir.ops.layout import broadcast_shapes
from bpir.types import TensorType, dtype_name

from .tracer import Tracer, active_trace, binary, lift, power, result_dtype, shape_of, unary, wrap

UNARY_UFUNCS = {
    np.negative: "neg", np.exp: "exp", np.log: "log", np.log1p: "log1p", np.expm1: "expm1",
    np.tanh: "tanh", np.sqrt: "sqrt", np.absolute: "abs", np.sign: "sign", np.sin: "sin",
    np.cos: "cos", np.reciprocal: "reciprocal", np.logical_not: "logical_not",
}  # fmt: skip
BINARY_UFUNCS = {
    np.add: "add", np.subtract: "sub", np.multiply: "mul", np.true_divide: "div",
    np.maximum: "maximum", np.minimum: "minimum", np.greater: "gt", np.greater_equal: "ge",
    np.less: "lt", np.less_equal: "le", np.equal: "eq", np.not_equal: "ne",
    np.logical_and: "logical_and", np.logical_or: "logical_or",
}  # fmt: skip
_FLOAT_UNARY = {"exp", "log", "log1p", "expm1", "tanh", "sqrt", "sin", "cos"}


def _float_dtype(x) -> str:
    d = result_dtype(x)
    return d if d.startswith("f") else "f64"


def apply_ufunc(ufunc, method, inputs, kwargs):
    if method != "__call__":
        raise TraceError(f"np.{ufunc.__name__}.{method} is not supported on traced values")
    out = kwargs.pop("out", None)
    dtype = kwargs.pop("dtype", None)
    if kwargs:
        raise TraceError(f"np.{ufunc.__name__}: unsupported arguments {sorted(kwargs)}")
    if ufunc in UNARY_UFUNCS:
        op = UNARY_UFUNCS[ufunc]
        (x,) = inputs
        if op == "reciprocal" and not result_dtype(x).startswith("f"):
            raise TraceError(f"np.reciprocal of {result_dtype(x)} values truncates in NumPy "
                             f"(np.reciprocal(2) == 0); write 1.0 / x for a float result (at {user_location()})")  # fmt: skip
        result = unary(op, x, dtype=_float_dtype(x) if op in _FLOAT_UNARY else None)
    elif ufunc in BINARY_UFUNCS:
        result = binary(BINARY_UFUNCS[ufunc], *inputs)
    elif ufunc is np.power:
        result = power(*inputs)
    elif ufunc is np.square:
        result = binary("mul", inputs[0], inputs[0])
    elif ufunc is np.positive:
        result = wrap(lift(inputs[0]))
    elif ufunc is np.matmul:
        result = matmul(*inputs)
    else:
        raise TraceError(f"np.{ufunc.__name__} is not supported on traced values (at {user_location()})")
    if dtype is not None:
        result = wrap(active_trace().builder.cast(lift(result), dtype_name(dtype)))
    if out is not None:
        (target,) = out
        if not isinstance(target, Tracer):
            raise TraceError("out= must be a traced array: NumPy arrays cannot hold traced results")
        if target.shape != result.shape:
            raise ShapeError(f"out= has shape {target.shape}, result has {result.shape}")
        target.value = active_trace().builder.cast(lift(result), target.value.dtype)
        return target
    return result


# -- reductions --------------------------------------------------------------------------------


def _axes(x, axis) -> tuple[int, ...]:
    nd = len(shape_of(x))
    if axis is None:
        return tuple(range(nd))
    axes = axis if isinstance(axis, (tuple, list)) else (axis,)
    for a in axes:
        if not -nd <= a < nd:
            raise ShapeError(f"axis {a} is out of bounds for an array of rank {nd} at {user_location()}")
    return tuple(sorted({a % nd for a in axes}))


def reduce_sum(x, axis=None, dtype=None, out=None, keepdims=False, **_):
    v = lift(x)
    if v.dtype == "bool" or (v.dtype == "i32" and dtype is None):
        v = active_trace().builder.cast(v, "i64")
    if dtype is not None:
        v = active_trace().builder.cast(v, dtype_name(dtype))
    return wrap(active_trace().builder.reduce_sum(v, axes=_axes(x, axis), keepdims=keepdims))


def mean(x, axis=None, dtype=None, out=None, keepdims=False, **_):
    axes = _axes(x, axis)
    count = int(np.prod([shape_of(x)[a] for a in axes]))
    total = reduce_sum(x, axis=axes, keepdims=keepdims, dtype=dtype or _float_dtype(x))
    return total / count


def amax(x, axis=None, out=None, keepdims=False, **_):
    v = lift(x)
    return wrap(active_trace().builder.reduce_max(v, axes=_axes(x, axis), keepdims=keepdims))


def amin(x, axis=None, out=None, keepdims=False, **_):
    return -amax(-x if isinstance(x, Tracer) else -np.asarray(x), axis=axis, keepdims=keepdims)


def var(x, axis=None, dtype=None, out=None, ddof=0, keepdims=False, **_):
    centred = x - mean(x, axis=axis, keepdims=True)
    axes = _axes(x, axis)
    count = int(np.prod([shape_of(x)[a] for a in axes])) - ddof
    return reduce_sum(centred * centred, axis=axis, keepdims=keepdims) / count


def std(x, axis=None, dtype=None, out=None, ddof=0, keepdims=False, **_):
    return unary("sqrt", var(x, axis=axis, ddof=ddof, keepdims=keepdims))


def argmax(x, axis=None, out=None, keepdims=False):
    b = active_trace().builder
    v = lift(x)
    if axis is None:
        v, axis = b.reshape(v, (v.type.size,)), 0
    (axis,) = _axes(wrap(v), axis)
    return wrap(b.argmax(v, axis=axis, keepdims=keepdims))


# -- shape functions ---------------------------------------------------------------------------


def reshape(x, *shape, order="C", newshape=None, **_):
    if newshape is not None:
        shape = (newshape,)
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    size = int(np.prod(shape_of(x)))
    if list(shape).count(-1) == 1:
        known = int(np.prod([d for d in shape if d != -1]))
        shape = tuple(size // known if d == -1 else d for d in shape)
    return wrap(active_trace().builder.reshape(lift(x), tuple(int(d) for d in shape)))


def transpose(x, *axes):
    if len(axes) == 1 and (axes[0] is None or isinstance(axes[0], (tuple, list))):
        axes = axes[0]
    nd = len(shape_of(x))
    perm = tuple(range(nd))[::-1] if not axes else tuple(a % nd for a in axes)
    return wrap(active_trace().builder.transpose(lift(x), perm))


def swapaxes(x, a, b):
    perm = list(range(len(shape_of(x))))
    perm[a], perm[b] = perm[b], perm[a]
    return transpose(x, perm)


def expand_dims(x, axis):
    axes = axis if isinstance(axis, (tuple, list)) else (axis,)
    nd = len(shape_of(x)) + len(axes)
    axes = tuple(sorted(a % nd for a in axes))
    return wrap(active_trace().builder.expand_dims(lift(x), axes=axes))


def squeeze(x, axis=None):
    shape = shape_of(x)
    axes = tuple(i for i, d in enumerate(shape) if d == 1) if axis is None else _axes(x, axis)
    return wrap(active_trace().builder.squeeze(lift(x), axes=axes))


def broadcast_to(x, shape):
    return wrap(active_trace().builder.broadcast_to(lift(x), tuple(shape)))


def concatenate(arrays, axis=0, out=None, dtype=None, **_):
    arrays = list(arrays)
    dt = dtype_name(dtype) if dtype else result_dtype(*arrays)
    vals = [lift(a, dt) for a in arrays]
    nd = vals[0].type.ndim
    return wrap(active_trace().builder.concatenate(*vals, axis=axis % nd))


def stack(arrays, axis=0, out=None, **_):
    arrays = [expand_dims(a if isinstance(a, Tracer) else wrap(lift(a)), axis) for a in arrays]
    return concatenate(arrays, axis=axis)


def where(cond, x=None, y=None):
    if x is None or y is None:
        raise TraceError("np.where(cond) without x and y has a data-dependent shape")
    dt = result_dtype(x, y)
    shape = broadcast_shapes(shape_of(cond), shape_of(x), shape_of(y))
    b = active_trace().builder
    c = lift(cond)
    if c.dtype != "bool":
        c = b.ne(c, b.scalar(0, c.dtype))
    vals = [c, lift(x, dt), lift(y, dt)]
    vals = [v if v.shape in ((), shape) else b.broadcast_to(v, shape) for v in vals]
    return wrap(b.where(*vals))


def clip(x, a_min=None, a_max=None, out=None, min=None, max=None, **_):
    lo = a_min if a_min is not None else min
    hi = a_max if a_max is not None else max
    if lo is not None:
        x = binary("maximum", x, lo)
    if hi is not None:
        x = binary("minimum", x, hi)
    return x


def take_along_axis(arr, indices, axis):
    b = active_trace().builder
    v, i = lift(arr), lift(indices)
    axis = axis % v.type.ndim
    target = tuple(i.shape[a] if a == axis else d for a, d in enumerate(v.shape))
    i = b.broadcast_to(i, broadcast_shapes(i.shape, target))
    return wrap(b.take_along_axis(v, i, axis=axis))


def full_like(x, fill_value, dtype=None, **_):
    dt = dtype_name(dtype) if dtype else result_dtype(x)
    return wrap(active_trace().builder.full(TensorType(shape_of(x), dt), fill_value))


def copy(x, **_):
    return wrap(lift(x))


# -- products ----------------------------------------------------------------------------------


def matmul(a, b_, **_):
    """NumPy matmul semantics: 1-D operands promoted and squeezed, batch dims broadcast."""
    b = active_trace().builder
    x, y = (lift(v, result_dtype(a, b_)) for v in (a, b_))
    if x.type.ndim == 0 or y.type.ndim == 0:
        raise ShapeError(f"matmul: operands must not be scalars, got {x.shape} and {y.shape}")
    keep_m, keep_n = x.type.ndim > 1, y.type.ndim > 1
    if not keep_m:
        x = b.reshape(x, (1, x.shape[0]))
    if not keep_n:
        y = b.reshape(y, (y.shape[0], 1))
    if x.shape[-1] != y.shape[-2]:
        raise ShapeError(f"matmul: cannot multiply {shape_of(a)} by {shape_of(b_)} at {user_location()}")
    batch = broadcast_shapes(x.shape[:-2], y.shape[:-2])
    x = b.broadcast_to(x, batch + x.shape[-2:])
    y = b.broadcast_to(y, batch + y.shape[-2:])
    out = b.matmul(x, y)
    shape = batch + x.shape[-2:-1] * keep_m + y.shape[-1:] * keep_n
    return wrap(b.reshape(out, shape))


def dot(a, b_, out=None):
    if len(shape_of(a)) > 2 or len(shape_of(b_)) > 2:
        raise TraceError("np.dot of arrays of rank > 2 is not supported; use np.matmul or einsum")
    if not shape_of(a) or not shape_of(b_):
        return binary("mul", a, b_)
    return matmul(a, b_)


def einsum(subscripts, *ops, **_):
    """Two-operand (and one-operand) einsum as transpose + reshape + matmul + reduce_sum."""
    if "..." in subscripts:
        raise TraceError("np.einsum with '...' is not supported")
    ins, _, out = subscripts.replace(" ", "").partition("->")
    ins = ins.split(",")
    if not _:
        counts = "".join(ins)
        out = "".join(sorted(c for c in set(counts) if counts.count(c) == 1))
    if len(ins) != len(ops) or len(ops) not in (1, 2):
        raise TraceError("np.einsum supports one or two operands")
    vals = [lift(v, result_dtype(*ops)) for v in ops]
    b = active_trace().builder
    # sum away labels that appear in one operand only and not in the output
    for k, (lab, v) in enumerate(zip(ins, vals)):
        others = "".join(ins[:k] + ins[k + 1 :]) + out
        gone = tuple(i for i, c in enumerate(lab) if c not in others)
        if len(set(lab)) != len(lab):
            raise TraceError("np.einsum with repeated labels in one operand is not supported")
        if gone:
            vals[k] = b.reduce_sum(v, axes=gone, keepdims=False)
            ins[k] = "".join(c for c in lab if c not in others)
    if len(vals) == 1:
        return wrap(b.transpose(vals[0], tuple(ins[0].index(c) for c in out)))
    (la, lb), (x, y) = ins, vals
    size = dict(zip(la, x.shape)) | dict(zip(lb, y.shape))
    batch = [c for c in la if c in lb and c in out]
    contract = [c for c in la if c in lb and c not in out]
    free_a = [c for c in la if c not in lb]
    free_b = [c for c in lb if c not in la]

    def prep(v, lab, order, m):
        v = b.transpose(v, tuple(lab.index(c) for c in order))
        n = lambda cs: int(np.prod([size[c] for c in cs]))  # noqa: E731
        return b.reshape(v, (n(batch), *(n(part) for part in m)))

    x2 = prep(x, la, batch + free_a + contract, (free_a, contract))
    y2 = prep(y, lb, batch + contract + free_b, (contract, free_b))
    r = b.matmul(x2, y2)
    labels = batch + free_a + free_b
    r = b.reshape(r, tuple(size[c] for c in labels))
    return wrap(b.transpose(r, tuple(labels.index(c) for c in out)))


FUNCTIONS = {
    np.sum: reduce_sum, np.mean: mean, np.max: amax, np.amax: amax, np.min: amin, np.amin: amin,
    np.var: var, np.std: std, np.argmax: argmax, np.reshape: reshape, np.transpose: transpose,
    np.swapaxes: swapaxes, np.expand_dims: expand_dims, np.squeeze: squeeze,
    np.broadcast_to: broadcast_to, np.concatenate: concatenate, np.stack: stack, np.where: where,
    np.clip: clip, np.take_along_axis: take_along_axis, np.dot: dot, np.matmul: matmul,
    np.einsum: einsum, np.full_like: full_like, np.copy: copy,
    np.zeros_like: lambda x, dtype=None, **k: full_like(x, 0, dtype),
    np.ones_like: lambda x, dtype=None, **k: full_like(x, 1, dtype),
    np.shape: lambda x: x.shape, np.ndim: lambda x: x.ndim, np.size: lambda x: x.size,
    np.ravel: lambda x, order="C": reshape(x, (-1,)),
}  # fmt: skip


def apply_function(func, args, kwargs):
    handler = FUNCTIONS.get(func)
    if handler is None:
        raise TraceError(f"np.{func.__name__} is not supported on traced values (at {user_location()})")
    return handler(*args, **kwargs)


def _astype(x, dtype, **_):
    return wrap(active_trace().builder.cast(lift(x), dtype_name(dtype)))


METHODS = {
    "sum": reduce_sum, "mean": mean, "max": amax, "min": amin, "var": var, "std": std,
    "argmax": argmax, "reshape": reshape, "transpose": transpose, "swapaxes": swapaxes,
    "squeeze": squeeze, "astype": _astype, "copy": copy, "clip": clip, "dot": dot,
    "flatten": lambda x, order="C": reshape(x, (-1,)),
    "ravel": lambda x, order="C": reshape(x, (-1,)),
}  # fmt: skip
