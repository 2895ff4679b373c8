"""Views of traced arrays: basic indexing, transposes and copy-free reshapes read through to
their base and write back into it, so ``row = y[0]; row[:] = 0`` changes ``y`` as in NumPy.

Whether NumPy would copy (a reshape of a transposed array) is decided by NumPy itself, on a
one-byte "shadow" array with the same layout as the traced one."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bpir.builder import Builder
from bpir.errors import ShapeError, TraceError
from bpir.ir import Value
from bpir.location import user_location

from .tracer import Tracer, active_trace, lift, shape_of, wrap


def _fail(msg: str):
    raise TraceError(f"{msg} (at {user_location()})")


def reverse(b: Builder, v: Value, axis: int) -> Value:
    """``v`` reversed along ``axis`` (a gather with a constant index)."""
    n = v.shape[axis]
    idx = np.arange(n - 1, -1, -1).reshape([n if a == axis else 1 for a in range(v.type.ndim)])
    return b.take_along_axis(v, b.broadcast_to(b.const(idx, "i64"), v.shape), axis=axis)


@dataclass(frozen=True)
class Index:
    """Basic indexing: a box of ascending (start, stop, step) per axis, axes to reverse
    (negative steps) and the result shape (ints dropped, None added)."""

    box: tuple
    flip: tuple
    shape: tuple

    @property
    def region(self) -> tuple:
        return tuple(len(range(a, z, s)) for a, z, s in self.box)

    def read(self, b: Builder, v: Value) -> Value:
        if any((a, z, s) != (0, d, 1) for (a, z, s), d in zip(self.box, v.shape)):
            start, stop, step = zip(*self.box) if self.box else ((), (), ())
            v = b.slice(v, start=start, stop=stop, step=step)
        for axis in self.flip:
            v = reverse(b, v, axis)
        return b.reshape(v, self.shape)

    def write(self, b: Builder, base: Value, new: Value) -> Value:
        new = b.reshape(new, self.region)
        for axis in self.flip:
            new = reverse(b, new, axis)
        if self.region == base.shape:
            return new
        lo = tuple(a for a, _, _ in self.box)
        hi = tuple(d - a - ((n - 1) * s + 1 if n else 0)
                   for d, (a, _, s), n in zip(base.shape, self.box, self.region))  # fmt: skip
        interior = tuple(s - 1 for _, _, s in self.box)
        placed = b.pad(new, lo=lo, hi=hi, interior=interior, value=0.0)
        mask = np.zeros(base.shape, dtype=bool)
        mask[tuple(slice(a, z, s) for a, z, s in self.box)] = True
        return b.where(b.const(mask), placed, base)


@dataclass(frozen=True)
class Transpose:
    perm: tuple

    def read(self, b: Builder, v: Value) -> Value:
        return b.transpose(v, self.perm)

    def write(self, b: Builder, base: Value, new: Value) -> Value:
        return b.transpose(new, tuple(int(i) for i in np.argsort(self.perm)))


@dataclass(frozen=True)
class Reshape:
    shape: tuple

    def read(self, b: Builder, v: Value) -> Value:
        return b.reshape(v, self.shape)

    def write(self, b: Builder, base: Value, new: Value) -> Value:
        return b.reshape(new, base.shape)


def basic_plan(shape: tuple, key) -> Index:
    """The Index for a basic key (ints, slices of any step, None, Ellipsis) on ``shape``."""
    key = key if isinstance(key, tuple) else (key,)
    if sum(k is Ellipsis for k in key) > 1:
        _fail("an index can only have a single ellipsis")
    n_real = sum(k is not None and k is not Ellipsis for k in key)
    if n_real > len(shape):
        _fail(f"too many indices for an array of shape {shape}")
    if any(k is Ellipsis for k in key):
        i = next(i for i, k in enumerate(key) if k is Ellipsis)
        key = key[:i] + (slice(None),) * (len(shape) - n_real) + key[i + 1 :]
    key = key + (slice(None),) * (len(shape) - sum(k is not None for k in key))
    box, flip, out_shape, axis = [], [], [], 0
    for k in key:
        if k is None:
            out_shape.append(1)
            continue
        d = shape[axis]
        if isinstance(k, slice):
            r = range(*k.indices(d))
            if r.step < 0 and len(r):
                box.append((r[-1], r[0] + 1, -r.step))
                flip.append(axis)
            else:
                box.append((r.start, r.start + (len(r) - 1) * r.step + 1, r.step) if len(r) else (0, 0, 1))
            out_shape.append(len(r))
        elif isinstance(k, (int, np.integer)) and not isinstance(k, bool):
            if not -d <= k < d:
                _fail(f"index {k} is out of bounds for axis {axis} with size {d}")
            k = int(k) % d
            box.append((k, k + 1, 1))
        else:
            _fail(f"unsupported index {k!r}")
        axis += 1
    return Index(tuple(box), tuple(flip), tuple(out_shape))


# -- making views ------------------------------------------------------------------------------


def _shadow(t: Tracer) -> np.ndarray:
    if t._shadow is None:  # a root: C-contiguous (np.zeros maps pages lazily, so it is cheap)
        t._shadow = np.zeros(t.shape, dtype=np.uint8)
    return t._shadow


def make_view(base: Tracer, view, shadow: np.ndarray | None) -> Tracer:
    """A tracer that reads through to ``base`` and writes back into it."""
    trace = active_trace()
    if trace is not base.trace:  # a closure over an outer array: a copy in this trace
        return wrap(view.read(trace.builder, lift(base)))
    t = Tracer(view.read(trace.builder, base.value), trace)
    t._base, t._view, t._stamp, t._shadow = base, view, base._root()._stamp, shadow
    return t


def index(x: Tracer, key) -> Tracer:
    """``x[key]`` for a basic key: a view."""
    plan = basic_plan(x.shape, key)
    return make_view(x, plan, _shadow(x)[key])


def transpose(x, *axes, **kwargs) -> Tracer:
    if "axes" in kwargs:
        axes = (kwargs.pop("axes"),)
    if kwargs:
        raise TypeError(f"transpose() got unexpected keywords {sorted(kwargs)}")
    if len(axes) == 1 and (axes[0] is None or isinstance(axes[0], (tuple, list))):
        axes = axes[0]
    x = _tracer(x)
    nd = x.ndim
    perm = tuple(range(nd))[::-1] if not axes else tuple(int(a) % nd for a in axes)
    if sorted(perm) != list(range(nd)):
        _fail(f"axes {tuple(axes)} do not match an array of rank {nd}")
    return make_view(x, Transpose(perm), _shadow(x).transpose(perm))


def swapaxes(x, axis1: int, axis2: int) -> Tracer:
    perm = list(range(len(shape_of(x))))
    perm[axis1], perm[axis2] = perm[axis2], perm[axis1]
    return transpose(x, perm)


def moveaxis(x, source, destination) -> Tracer:
    nd = len(shape_of(x))
    src = [int(s) % nd for s in np.atleast_1d(source)]
    dst = [int(d) % nd for d in np.atleast_1d(destination)]
    if len(src) != len(dst):
        _fail("moveaxis: source and destination need the same number of axes")
    order = [a for a in range(nd) if a not in src]
    for d, s in sorted(zip(dst, src)):
        order.insert(d, s)
    return transpose(x, order)


def reshape(x, *shape, order: str = "C", newshape=None, **kwargs) -> Tracer:
    """NumPy's reshape: a view when NumPy can reshape without copying, else a copy."""
    if "shape" in kwargs:
        shape = (kwargs.pop("shape"),)
    if kwargs:
        raise TypeError(f"reshape() got unexpected keywords {sorted(kwargs)}")
    if newshape is not None:
        shape = (newshape,)
    if order != "C":
        _fail(f"np.reshape: order={order!r} is not supported; only order='C'")
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    x = _tracer(x)
    shadow = _shadow(x)
    try:
        s = shadow.reshape(tuple(int(d) for d in shape))
    except (ValueError, TypeError):
        raise ShapeError(f"reshape: cannot reshape {x.shape} ({x.size} elements) to {tuple(shape)} "
                         f"at {user_location()}") from None  # fmt: skip
    if np.may_share_memory(s, shadow) or s.size == 0:
        return make_view(x, Reshape(s.shape), s)
    return wrap(active_trace().builder.reshape(lift(x), s.shape))


def ravel(x, order: str = "C") -> Tracer:
    return reshape(x, (-1,), order=order)


def flatten(x, order: str = "C") -> Tracer:
    """Always a copy, as NumPy's ``ndarray.flatten``."""
    r = reshape(x, (-1,), order=order)
    return wrap(lift(r)) if r._base is not None else r


def squeeze(x, axis=None) -> Tracer:
    shape = shape_of(x)
    axes = range(len(shape)) if axis is None else np.atleast_1d(axis)
    axes = {int(a) % len(shape) for a in axes if axis is not None or shape[a] == 1}
    if any(shape[a] != 1 for a in axes):
        _fail(f"cannot squeeze axes {axis} of shape {shape}: they are not of size 1")
    return reshape(x, tuple(d for i, d in enumerate(shape) if i not in axes))


def expand_dims(x, axis) -> Tracer:
    shape = list(shape_of(x))
    axes = sorted(int(a) % (len(shape) + len(np.atleast_1d(axis))) for a in np.atleast_1d(axis))
    for a in axes:
        shape.insert(a, 1)
    return reshape(x, tuple(shape))


def _tracer(x) -> Tracer:
    return x if isinstance(x, Tracer) else wrap(lift(x))


FUNCTIONS = {
    np.transpose: transpose, np.swapaxes: swapaxes, np.moveaxis: moveaxis, np.reshape: reshape,
    np.ravel: ravel, np.squeeze: squeeze, np.expand_dims: expand_dims,
}  # fmt: skip
METHODS = {
    "transpose": transpose, "swapaxes": swapaxes, "reshape": reshape, "ravel": ravel,
    "flatten": flatten, "squeeze": squeeze,
}  # fmt: skip
