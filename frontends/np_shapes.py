"""NumPy's shape and layout functions on tracers (reshape, transpose, flip, roll, repeat,
tile, stack, take, tril, meshgrid, sort, ...): each becomes layout ops, gathers or masks."""

from __future__ import annotations

import numpy as np

from bpir.errors import ShapeError
from bpir.ops.layout import broadcast_shapes
from bpir.types import TensorType, dtype_name

from .np_common import axes_of, builder, fail, norm_axis, refuse, refuse_unless
from .tracer import Tracer, binary, lift, result_dtype, shape_of, wrap


def _t(x) -> Tracer:
    return x if isinstance(x, Tracer) else wrap(lift(x))


def _reshape(x, shape) -> Tracer:
    shape = tuple(int(d) for d in (shape if isinstance(shape, (tuple, list)) else (shape,)))
    size = int(np.prod(shape_of(x), dtype=np.int64))
    if shape.count(-1) > 1:
        raise ShapeError(f"can only specify one unknown dimension in {shape}")
    if -1 in shape:
        known = int(np.prod([d for d in shape if d != -1], dtype=np.int64))
        if not known or size % known:
            raise ShapeError(f"cannot reshape {shape_of(x)} to {shape}")
        shape = tuple(size // known if d == -1 else d for d in shape)
    return wrap(builder().reshape(lift(x), shape))


def reshape(a, /, shape=None, order="C", *, newshape=None, copy=None):
    refuse_unless("reshape", "order", order, "C")
    if newshape is not None:
        if shape is not None:
            fail("np.reshape: give shape= or newshape=, not both")
        shape = newshape
    if shape is None:
        fail("np.reshape: shape= is required")
    return _reshape(a, shape)


def method_reshape(x, *shape, order="C", copy=None):
    refuse_unless("reshape", "order", order, "C")
    return _reshape(x, shape[0] if len(shape) == 1 else shape)


def ravel(a, order="C"):
    refuse_unless("ravel", "order", order, "C")
    return _reshape(a, (-1,))


def transpose(a, axes=None):
    nd = len(shape_of(a))
    perm = tuple(range(nd))[::-1] if axes is None else tuple(norm_axis(int(p), nd) for p in axes)
    return wrap(builder().transpose(lift(a), perm))


def method_transpose(x, *axes):
    if len(axes) == 1 and (axes[0] is None or isinstance(axes[0], (tuple, list))):
        axes = axes[0]
    return transpose(x, axes or None)


def matrix_transpose(x, /):
    nd = len(shape_of(x))
    if nd < 2:
        raise ShapeError(f"matrix_transpose needs a rank >= 2 array, got {shape_of(x)}")
    return swapaxes(x, -1, -2)


def swapaxes(a, axis1, axis2):
    nd = len(shape_of(a))
    perm = list(range(nd))
    i, j = norm_axis(axis1, nd), norm_axis(axis2, nd)
    perm[i], perm[j] = perm[j], perm[i]
    return transpose(a, perm)


def moveaxis(a, source, destination):
    nd = len(shape_of(a))
    src = [norm_axis(s, nd) for s in (source if isinstance(source, (tuple, list)) else (source,))]
    dst = [
        norm_axis(d, nd) for d in (destination if isinstance(destination, (tuple, list)) else (destination,))
    ]
    if len(src) != len(dst):
        raise ShapeError("moveaxis: source and destination need the same number of axes")
    order = [i for i in range(nd) if i not in src]
    for d, s in sorted(zip(dst, src)):
        order.insert(d, s)
    return transpose(a, order)


def expand_dims(a, axis):
    axes = axis if isinstance(axis, (tuple, list)) else (axis,)
    nd = len(shape_of(a)) + len(axes)
    return wrap(builder().expand_dims(lift(a), axes=tuple(sorted(norm_axis(x, nd) for x in axes))))


def squeeze(a, axis=None):
    shape = shape_of(a)
    axes = tuple(i for i, d in enumerate(shape) if d == 1) if axis is None else axes_of(a, axis)
    return wrap(builder().squeeze(lift(a), axes=axes))


def broadcast_to(array, shape, subok=False):
    refuse_unless("broadcast_to", "subok", subok, False)
    shape = tuple(shape) if isinstance(shape, (tuple, list)) else (shape,)
    return wrap(builder().broadcast_to(lift(array), shape))


def broadcast_arrays(*args, subok=False):
    refuse_unless("broadcast_arrays", "subok", subok, False)
    shape = broadcast_shapes(*(shape_of(a) for a in args))
    return tuple(broadcast_to(a, shape) for a in args)


def concatenate(arrays, axis=0, out=None, dtype=None, casting="same_kind"):
    refuse("concatenate", out=out)
    refuse_unless("concatenate", "casting", casting, "same_kind")
    arrays = list(arrays)
    if axis is None:
        arrays, axis = [_reshape(a, (-1,)) for a in arrays], 0
    dt = dtype_name(dtype) if dtype else result_dtype(*arrays)
    vals = [lift(a, dt) for a in arrays]
    return wrap(builder().concatenate(*vals, axis=norm_axis(axis, vals[0].type.ndim)))


def stack(arrays, axis=0, out=None, *, dtype=None, casting="same_kind"):
    refuse("stack", out=out)
    arrays = list(arrays)
    nd = len(shape_of(arrays[0])) + 1
    return concatenate([expand_dims(a, norm_axis(axis, nd)) for a in arrays], axis=axis, dtype=dtype,
                       casting=casting)  # fmt: skip


def hstack(tup, *, dtype=None, casting="same_kind"):
    arrays = atleast_1d(*tup) if len(tup) > 1 else (atleast_1d(*tup),)
    axis = 0 if len(shape_of(arrays[0])) == 1 else 1
    return concatenate(arrays, axis=axis, dtype=dtype, casting=casting)


def vstack(tup, *, dtype=None, casting="same_kind"):
    arrays = atleast_2d(*tup) if len(tup) > 1 else (atleast_2d(*tup),)
    return concatenate(arrays, axis=0, dtype=dtype, casting=casting)


def unstack(x, /, *, axis=0):
    nd = len(shape_of(x))
    axis = norm_axis(axis, nd)
    return tuple(_index(x, axis, i) for i in range(shape_of(x)[axis]))


def _index(x, axis: int, i: int) -> Tracer:
    b = builder()
    v = lift(x)
    start = tuple(i if a == axis else 0 for a in range(v.type.ndim))
    stop = tuple(i + 1 if a == axis else d for a, d in enumerate(v.shape))
    s = b.slice(v, start=start, stop=stop, step=(1,) * v.type.ndim)
    return wrap(b.reshape(s, v.shape[:axis] + v.shape[axis + 1 :]))


def _atleast(arys, nd: int):
    out = []
    for a in arys:
        s = shape_of(a)
        if len(s) >= nd:
            out.append(_t(a))
        elif nd == 3 and len(s) == 1:
            out.append(_reshape(a, (1, s[0], 1)))
        elif nd == 3 and len(s) == 2:
            out.append(_reshape(a, (*s, 1)))
        else:
            out.append(_reshape(a, (1,) * (nd - len(s)) + s))
    return out[0] if len(out) == 1 else tuple(out)


def atleast_1d(*arys):
    return _atleast(arys, 1)


def atleast_2d(*arys):
    return _atleast(arys, 2)


def atleast_3d(*arys):
    return _atleast(arys, 3)


# -- reordering ------------------------------------------------------------------------------


def _gather(x, idx: np.ndarray | None, axis: int, index_value=None) -> Tracer:
    """x's elements along ``axis`` picked by integer indices of x's shape off that axis."""
    b = builder()
    v = lift(x)
    iv = index_value if index_value is not None else b.const(idx, "i64")
    return wrap(b.take_along_axis(v, iv, axis=axis))


def flip(m, axis=None):
    b = builder()
    v = lift(m)
    for a in axes_of(m, axis):
        n = v.shape[a]
        rev = b.sub(b.scalar(n - 1, "i64"), b.iota(shape=v.shape, axis=a, dtype="i64"))
        v = b.take_along_axis(v, rev, axis=a)
    return wrap(v)


def fliplr(m):
    return flip(m, 1)


def flipud(m):
    return flip(m, 0)


def roll(a, shift, axis=None):
    if axis is None:
        return _reshape(roll(_reshape(a, (-1,)), shift, 0), shape_of(a))
    shifts = shift if isinstance(shift, (tuple, list)) else (shift,)
    axes = axis if isinstance(axis, (tuple, list)) else (axis,)
    if len(shifts) == 1:
        shifts = shifts * len(axes)
    if len(axes) == 1:
        axes = axes * len(shifts)
    if len(shifts) != len(axes):
        raise ShapeError(f"roll: shift {shift} and axis {axis} do not match")
    b = builder()
    v = lift(a)
    totals: dict[int, int] = {}
    for s, ax in zip(shifts, axes):
        ax = norm_axis(ax, v.type.ndim)
        totals[ax] = totals.get(ax, 0) + int(s)
    for ax, s in totals.items():
        n = v.shape[ax]
        k = s % n if n else 0
        if k:
            v = b.concatenate(_axis_slice(b, v, ax, n - k, n), _axis_slice(b, v, ax, 0, n - k), axis=ax)
    return wrap(v)


def _axis_slice(b, v, axis: int, lo: int, hi: int):
    start = tuple(lo if i == axis else 0 for i in range(v.type.ndim))
    stop = tuple(hi if i == axis else d for i, d in enumerate(v.shape))
    return b.slice(v, start=start, stop=stop, step=(1,) * v.type.ndim)


def repeat(a, repeats, axis=None):
    if isinstance(repeats, Tracer):
        fail("np.repeat: traced repeat counts give a data-dependent shape; pass them as a NumPy array")
    if axis is None:
        a, axis = _reshape(a, (-1,)), 0
    shape = shape_of(a)
    axis = norm_axis(axis, len(shape))
    reps = np.asarray(repeats)
    if reps.ndim == 0:
        r = int(reps)
        b = builder()
        v = b.expand_dims(lift(a), axes=(axis + 1,))
        full = shape[: axis + 1] + (r,) + shape[axis + 1 :]
        out = shape[:axis] + (shape[axis] * r,) + shape[axis + 1 :]
        return wrap(b.reshape(b.broadcast_to(v, full), out))
    src = np.repeat(np.arange(shape[axis]), reps)
    idx_shape = tuple(len(src) if i == axis else 1 for i in range(len(shape)))
    target = tuple(len(src) if i == axis else d for i, d in enumerate(shape))
    return _gather(a, np.broadcast_to(src.reshape(idx_shape), target), axis)


def tile(A, reps):
    reps = tuple(int(r) for r in (reps if isinstance(reps, (tuple, list)) else (reps,)))
    shape = shape_of(A)
    nd = max(len(shape), len(reps))
    shape = (1,) * (nd - len(shape)) + shape
    reps = (1,) * (nd - len(reps)) + reps
    b = builder()
    v = b.reshape(lift(A), tuple(x for d in shape for x in (1, d)))
    v = b.broadcast_to(v, tuple(x for r, d in zip(reps, shape) for x in (r, d)))
    return wrap(b.reshape(v, tuple(r * d for r, d in zip(reps, shape))))


def take(a, indices, axis=None, out=None, mode=None):
    refuse("take", out=out)
    refuse_unless("take", "mode", mode, None, "raise")
    if axis is None:
        a, axis = _reshape(a, (-1,)), 0
    shape = shape_of(a)
    axis = norm_axis(axis, len(shape))
    b = builder()
    ind = lift(indices, "i64") if isinstance(indices, Tracer) else b.const(np.asarray(indices), "i64")
    k = ind.type.size
    flat = b.reshape(ind, tuple(k if i == axis else 1 for i in range(len(shape))))
    target = tuple(k if i == axis else d for i, d in enumerate(shape))
    picked = b.take_along_axis(lift(a), b.broadcast_to(flat, target), axis=axis)
    return wrap(b.reshape(picked, shape[:axis] + ind.shape + shape[axis + 1 :]))


def take_along_axis(arr, indices, axis=-1):
    b = builder()
    if axis is None:
        arr, axis = _reshape(arr, (-1,)), 0
    v, i = lift(arr), lift(indices)
    axis = norm_axis(axis, v.type.ndim)
    target = tuple(i.shape[a] if a == axis else d for a, d in enumerate(v.shape))
    i = b.broadcast_to(i, broadcast_shapes(i.shape, target))
    return wrap(b.take_along_axis(v, i, axis=axis))


def sort(a, axis=-1, kind=None, order=None, *, stable=None):
    refuse("sort", order=order)
    if axis is None:
        a, axis = _reshape(a, (-1,)), 0
    return take_along_axis(a, argsort(a, axis=axis), axis=axis)


def argsort(a, axis=-1, kind=None, order=None, *, stable=None):
    """Always stable: NumPy promises no order of ties unless asked for a stable sort."""
    refuse("argsort", order=order)
    if axis is None:
        a, axis = _reshape(a, (-1,)), 0
    return wrap(builder().argsort(lift(a), axis=norm_axis(axis, len(shape_of(a)))))


def searchsorted(a, v, side="left", sorter=None):
    refuse_unless("searchsorted", "side", side, "left", "right")
    if sorter is not None:
        a = take(a, sorter)
    if len(shape_of(a)) != 1:
        raise ShapeError(f"searchsorted needs a 1-D array, got {shape_of(a)}")
    dt = result_dtype(a, v)
    return wrap(builder().searchsorted(lift(a, dt), lift(v, dt), side=side))


# -- masks and diagonals ---------------------------------------------------------------------


def _tri_mask(m, k, lower):
    shape = shape_of(m)
    if len(shape) < 2:
        fail(f"np.{'tril' if lower else 'triu'} needs a rank >= 2 array, got {shape}")
    n, c = shape[-2:]
    keep = np.tril(np.ones((n, c), bool), k) if lower else np.triu(np.ones((n, c), bool), k)
    b = builder()
    v = lift(m)
    return wrap(
        b.where(b.broadcast_to(b.const(keep), v.shape), v, b.broadcast_to(b.scalar(0, v.dtype), v.shape))
    )


def tril(m, k=0):
    return _tri_mask(m, int(k), True)


def triu(m, k=0):
    return _tri_mask(m, int(k), False)


def diagonal(a, offset=0, axis1=0, axis2=1):
    nd = len(shape_of(a))
    i, j = norm_axis(axis1, nd), norm_axis(axis2, nd)
    if i == j:
        raise ShapeError("diagonal: axis1 and axis2 cannot be the same")
    x = transpose(a, [d for d in range(nd) if d not in (i, j)] + [i, j])
    *batch, n, m = shape_of(x)
    k = int(offset)
    length = max(0, min(n, m - k) if k >= 0 else min(n + k, m))
    b = builder()
    flat = b.reshape(lift(x), (*batch, n * m))
    start = k if k >= 0 else -k * m
    stop = start + (length - 1) * (m + 1) + 1 if length else start
    lead = len(batch)
    return wrap(b.slice(flat, start=(0,) * lead + (start,), stop=(*batch, stop), step=(1,) * lead + (m + 1,)))


def linalg_diagonal(x, /, *, offset=0):
    return diagonal(x, offset, -2, -1)


def diag(v, k=0):
    shape = shape_of(v)
    if len(shape) == 2:
        return diagonal(v, k)
    if len(shape) != 1:
        raise ShapeError(f"diag needs a 1-D or 2-D array, got {shape}")
    n, k = shape[0], int(k)
    size = n + abs(k)
    b = builder()
    x = lift(v)
    w = b.pad(x, lo=(0,), hi=(abs(k),), interior=(0,), value=0.0)
    rows = b.broadcast_to(b.reshape(w, (size, 1) if k >= 0 else (1, size)), (size, size))
    mask = np.eye(size, k=k, dtype=bool)
    return wrap(b.where(b.const(mask), rows, b.broadcast_to(b.scalar(0, x.dtype), (size, size))))


def meshgrid(*xi, copy=True, sparse=False, indexing="xy"):
    refuse_unless("meshgrid", "indexing", indexing, "xy", "ij")
    n = len(xi)
    sizes = [int(np.prod(shape_of(x), dtype=np.int64)) for x in xi]
    out = []
    for i, x in enumerate(xi):
        shape = [1] * n
        shape[i] = sizes[i]
        if indexing == "xy" and n > 1 and i < 2:
            shape[i] = 1
            shape[1 - i] = sizes[i]
        g = _reshape(x, tuple(shape))
        if not sparse:
            full = list(sizes)
            if indexing == "xy" and n > 1:
                full[0], full[1] = full[1], full[0]
            g = broadcast_to(g, tuple(full))
        out.append(g)
    return tuple(out)


# -- values like an array --------------------------------------------------------------------


def full_like(a, fill_value, dtype=None, order="K", subok=True, shape=None, *, device=None):
    refuse_unless("full_like", "device", device, None, "cpu")
    if isinstance(fill_value, Tracer):
        return broadcast_to(wrap(lift(fill_value, dtype_name(dtype) if dtype else result_dtype(a))),
                            shape if shape is not None else shape_of(a))  # fmt: skip
    dt = dtype_name(dtype) if dtype else result_dtype(a)
    shape = (
        tuple(shape) if isinstance(shape, (tuple, list)) else (shape,) if shape is not None else shape_of(a)
    )
    return wrap(builder().full(TensorType(shape, dt), fill_value))


def zeros_like(a, dtype=None, order="K", subok=True, shape=None, *, device=None):
    return full_like(a, 0, dtype, order, subok, shape, device=device)


def ones_like(a, dtype=None, order="K", subok=True, shape=None, *, device=None):
    return full_like(a, 1, dtype, order, subok, shape, device=device)


def copy(a, order="K", subok=False):
    return wrap(lift(a))


def astype(x, dtype, /, *, copy=True, device=None):
    refuse_unless("astype", "device", device, None, "cpu")
    return wrap(builder().cast(lift(x), dtype_name(dtype)))


def method_astype(x, dtype, order="K", casting="unsafe", subok=True, copy=True):
    refuse_unless("astype", "casting", casting, "unsafe")
    return wrap(builder().cast(lift(x), dtype_name(dtype)))


def where(condition, x=None, y=None):
    if x is None or y is None:
        fail("np.where(cond) without x and y has a data-dependent shape; use np.where(cond, x, y)")
    dt = result_dtype(x, y)
    shape = broadcast_shapes(shape_of(condition), shape_of(x), shape_of(y))
    b = builder()
    c = lift(condition)
    if c.dtype != "bool":
        c = b.ne(c, b.scalar(0, c.dtype))
    vals = [c, lift(x, dt), lift(y, dt)]
    return wrap(b.where(*[v if v.shape in ((), shape) else b.broadcast_to(v, shape) for v in vals]))


def clip(a, a_min=None, a_max=None, out=None, *, min=None, max=None, dtype=None, casting="same_kind"):
    refuse("clip", out=out, dtype=dtype)
    lo = a_min if a_min is not None else min
    hi = a_max if a_max is not None else max
    if lo is not None:
        a = binary("maximum", a, lo)
    if hi is not None:
        a = binary("minimum", a, hi)
    return _t(a)
