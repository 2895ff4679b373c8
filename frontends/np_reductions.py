"""NumPy reductions and scans on tracers, with every keyword NumPy gives them either
implemented (``where=``, ``initial=``, ``ddof=``/``correction=``, ``dtype=``, ``keepdims=``) or
refused by name (``out=``)."""

from __future__ import annotations

import numpy as np

from bpir.errors import ShapeError
from bpir.types import TensorType, dtype_name, is_float

from .np_common import axes_of, builder, fail, float_dtype, norm_axis, refuse
from .tracer import lift, shape_of, wrap


def _lifted(x, dtype=None):
    """The operand as a value; NumPy accumulates bool and int32 sums in int64."""
    v = lift(x)
    if dtype is not None:
        return builder().cast(v, dtype_name(dtype))
    if v.dtype in ("bool", "i32"):
        return builder().cast(v, "i64")
    return v


def _masked(fn: str, v, where, fill):
    """``v`` with the elements outside ``where`` replaced by ``fill`` (NumPy's ``where=``)."""
    if where is None or where is True:
        return v
    b = builder()
    m = lift(where)
    if m.dtype != "bool":
        fail(f"np.{fn}: where= must be a bool array, got {m.dtype}")
    try:
        m = b.broadcast_to(m, v.shape)
    except ShapeError:
        fail(f"np.{fn}: where= of shape {m.shape} does not broadcast to {v.shape}")
    return b.where(m, v, b.broadcast_to(b.scalar(fill, v.dtype), v.shape))


def _count(x, axis, keepdims, where, dtype):
    """How many elements each output position reduces (a traced count under ``where=``)."""
    b = builder()
    axes = axes_of(x, axis)
    if where is None or where is True:
        return int(np.prod([shape_of(x)[a] for a in axes], dtype=np.int64))
    ones = _masked("mean", b.full(TensorType(shape_of(x), dtype), 1), where, 0)
    return wrap(b.reduce_sum(ones, axes=axes, keepdims=keepdims))


def _accumulate(name: str, op: str, combine: str, identity, x, axis, dtype, out, keepdims, initial, where):
    """sum / prod: masked-out elements become the identity, ``initial`` is combined in last."""
    refuse(name, out=out)
    b = builder()
    v = _masked(name, _lifted(x, dtype), where, identity)
    r = b.emit(op, v, axes=axes_of(x, axis), keepdims=keepdims)
    if initial is not None:
        r = b.emit(combine, r, b.scalar(initial, r.dtype))
    return wrap(r)


def reduce_sum(x, axis=None, dtype=None, out=None, keepdims=False, initial=None, where=None):
    return _accumulate("sum", "reduce_sum", "add", 0, x, axis, dtype, out, keepdims, initial, where)


def prod(x, axis=None, dtype=None, out=None, keepdims=False, initial=None, where=None):
    return _accumulate("prod", "reduce_prod", "mul", 1, x, axis, dtype, out, keepdims, initial, where)


def mean(x, axis=None, dtype=None, out=None, keepdims=False, where=None):
    refuse("mean", out=out)
    dt = dtype_name(dtype) if dtype is not None else float_dtype(x)
    total = reduce_sum(x, axis=axis, keepdims=keepdims, dtype=dt, where=where)
    return total / _count(x, axis, keepdims, where, dt)


def _extreme(fn: str, x, axis, out, keepdims, initial, where, largest: bool):
    refuse(fn, out=out)
    b = builder()
    v = lift(x)
    if v.dtype == "bool":
        r = (any_ if largest else all_)(x, axis=axis, keepdims=keepdims, where=where)
        return r if initial is None else (r | bool(initial) if largest else r & bool(initial))
    if where is not None and where is not True and initial is None:
        fail(f"np.{fn}: where= needs initial= (as in NumPy: a fully masked row has no value)")
    if initial is not None:
        v = _masked(fn, v, where, initial)
    if not largest:
        v = b.neg(v)
    r = b.reduce_max(v, axes=axes_of(x, axis), keepdims=keepdims)
    if not largest:
        r = b.neg(r)
    if initial is not None:
        r = b.emit("maximum" if largest else "minimum", r, b.scalar(initial, r.dtype))
    return wrap(r)


def amax(x, axis=None, out=None, keepdims=False, initial=None, where=None):
    return _extreme("max", x, axis, out, keepdims, initial, where, largest=True)


def amin(x, axis=None, out=None, keepdims=False, initial=None, where=None):
    return _extreme("min", x, axis, out, keepdims, initial, where, largest=False)


def var(x, axis=None, dtype=None, out=None, ddof=0, keepdims=False, *, where=None, mean=None,
        correction=None):  # fmt: skip
    refuse("var", out=out, mean=mean)
    if correction is not None:
        if ddof != 0:
            fail("np.var: ddof= and correction= cannot both be given")
        ddof = correction
    dt = dtype_name(dtype) if dtype is not None else float_dtype(x)
    x = wrap(lift(x, dt))
    centred = x - globals()["mean"](x, axis=axis, keepdims=True, where=where)
    sq = reduce_sum(centred * centred, axis=axis, keepdims=keepdims, where=where)
    return sq / (_count(x, axis, keepdims, where, dt) - ddof)


def std(x, axis=None, dtype=None, out=None, ddof=0, keepdims=False, *, where=None, mean=None,
        correction=None):  # fmt: skip
    refuse("std", out=out, mean=mean)
    v = var(x, axis=axis, dtype=dtype, ddof=ddof, keepdims=keepdims, where=where, correction=correction)
    return wrap(builder().sqrt(lift(v)))


def _arg(fn: str, x, axis, out, keepdims, largest: bool):
    refuse(fn, out=out)
    b = builder()
    v = lift(x)
    if not largest:  # order-reversing maps keep the first extreme first (NaN stays NaN)
        v = b.logical_not(v) if v.dtype == "bool" else b.neg(v) if is_float(v.dtype) else b.bitwise_invert(v)
    nd = v.type.ndim
    if axis is None:
        r = b.argmax(b.reshape(v, (v.type.size,)), axis=0, keepdims=False)
        return wrap(b.reshape(r, (1,) * nd) if keepdims else r)
    return wrap(b.argmax(v, axis=norm_axis(axis, nd), keepdims=keepdims))


def argmax(x, axis=None, out=None, *, keepdims=False):
    return _arg("argmax", x, axis, out, keepdims, largest=True)


def argmin(x, axis=None, out=None, *, keepdims=False):
    return _arg("argmin", x, axis, out, keepdims, largest=False)


def _nonzero(x):
    b = builder()
    v = lift(x)
    return v if v.dtype == "bool" else b.ne(v, b.scalar(0, v.dtype))


def any_(x, axis=None, out=None, keepdims=False, *, where=None):
    refuse("any", out=out)
    b = builder()
    hits = b.cast(_masked("any", _nonzero(x), where, False), "i64")
    return wrap(b.gt(b.reduce_sum(hits, axes=axes_of(x, axis), keepdims=keepdims), b.scalar(0, "i64")))


def all_(x, axis=None, out=None, keepdims=False, *, where=None):
    refuse("all", out=out)
    b = builder()
    misses = b.cast(_masked("all", b.logical_not(_nonzero(x)), where, False), "i64")
    return wrap(b.eq(b.reduce_sum(misses, axes=axes_of(x, axis), keepdims=keepdims), b.scalar(0, "i64")))


def count_nonzero(x, axis=None, *, keepdims=False):
    b = builder()
    return wrap(b.reduce_sum(b.cast(_nonzero(x), "i64"), axes=axes_of(x, axis), keepdims=keepdims))


# -- scans -----------------------------------------------------------------------------------


def _scan(fn: str, op: str, x, axis, dtype, out, include_initial=False):
    refuse(fn, out=out)
    b = builder()
    v = _lifted(x, dtype)
    if axis is None:
        if fn.startswith("cumulative") and v.type.ndim > 1:
            fail(f"np.{fn}: axis= is required for arrays of rank > 1")
        v, axis = b.reshape(v, (v.type.size,)), 0
    axis = norm_axis(axis, v.type.ndim)
    r = b.emit(op, v, axis=axis)
    if include_initial:
        lo = tuple(int(i == axis) for i in range(v.type.ndim))
        zero = (0,) * v.type.ndim
        r = b.pad(r, lo=lo, hi=zero, interior=zero, value=0.0 if op == "cumsum" else 1.0)
    return wrap(r)


def cumsum(a, axis=None, dtype=None, out=None):
    return _scan("cumsum", "cumsum", a, axis, dtype, out)


def cumprod(a, axis=None, dtype=None, out=None):
    return _scan("cumprod", "cumprod", a, axis, dtype, out)


def cumulative_sum(x, /, *, axis=None, dtype=None, out=None, include_initial=False):
    return _scan("cumulative_sum", "cumsum", x, axis, dtype, out, include_initial)


def cumulative_prod(x, /, *, axis=None, dtype=None, out=None, include_initial=False):
    return _scan("cumulative_prod", "cumprod", x, axis, dtype, out, include_initial)


def diff(a, n=1, axis=-1, prepend=None, append=None):
    from .np_shapes import concatenate

    nd = len(shape_of(a))
    axis = norm_axis(axis, nd)
    if prepend is not None or append is not None:
        # scalars are broadcast to one slice along the axis, as in NumPy
        edge = tuple(1 if i == axis else d for i, d in enumerate(shape_of(a)))
        parts = [p if len(shape_of(p)) == nd else np.broadcast_to(p, edge) for p in (prepend, a, append)
                 if p is not None]  # fmt: skip
        a = concatenate(parts, axis=axis)
    b = builder()
    v = lift(a)
    for _ in range(int(n)):
        size = v.shape[axis]
        start = [0] * nd
        stop = list(v.shape)
        hi = list(start)
        hi[axis] = 1
        stop_lo = list(stop)
        stop_lo[axis] = size - 1
        ones = (1,) * nd
        later = b.slice(v, start=tuple(hi), stop=tuple(stop), step=ones)
        earlier = b.slice(v, start=tuple(start), stop=tuple(stop_lo), step=ones)
        v = b.ne(later, earlier) if v.dtype == "bool" else b.sub(later, earlier)
    return wrap(v)
