"""Boolean-mask reads: ``x[mask]`` has a shape that depends on data, so it lives only through
elementwise arithmetic under that one mask until it is written back with ``z[mask] = ...``;
the whole read-modify-write then traces as ``np.where(mask, f(x), z)``."""

from __future__ import annotations

import numpy as np

from bpir.errors import TraceError
from bpir.ir import Value
from bpir.location import user_location

from .tracer import Tracer, active_trace, lift, shape_of, wrap


def _refuse(what: str = "this use of x[mask]", made_at: str | None = None):
    made = f" (x[mask] made at {made_at})" if made_at and made_at != user_location() else ""
    raise TraceError(
        f"{what} at {user_location()}{made}: x[mask] has a shape that depends on the data, which a "
        "traced (static) graph cannot have. Elementwise arithmetic under the same mask written "
        "back with z[mask] = ... traces; otherwise write np.where(mask, f(x), z), or for "
        "reductions np.sum(np.where(mask, x, 0))."
    )


class Masked(Tracer):
    """``x[mask]`` held as the full-shape array (masked-out elements are 1, a value where
    common functions and their derivatives are finite) plus the mask."""

    __slots__ = ("mask", "full_mask", "made_at")
    _masked = True

    shape = property(lambda self: _refuse("the shape of x[mask]"))
    ndim = property(lambda self: _refuse("the shape of x[mask]"))
    size = property(lambda self: _refuse("the size of x[mask]"))

    def __len__(self):
        _refuse("len(x[mask])")

    def __iter__(self):
        _refuse("iterating over x[mask]")

    def __getitem__(self, key):
        _refuse("indexing x[mask]")

    def __setitem__(self, key, val):
        _refuse("writing into x[mask] (write z[mask] = ... instead)")

    def __array_function__(self, func, types, args, kwargs):
        _refuse(f"np.{func.__name__} of x[mask]")

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        _refuse(f"x[mask].{name}")

    def _assign_result(self, r: Tracer) -> Tracer:
        return r  # x[mask] += 1 makes a new masked value; z[mask] = ... writes it back

    def __repr__(self) -> str:
        return f"Masked({self.value.type})"


def same_mask(a, b) -> bool:
    if isinstance(a, Tracer) and isinstance(b, Tracer):
        return a.value is b.value
    if isinstance(a, np.ndarray) and isinstance(b, np.ndarray):
        return a.shape == b.shape and bool(np.array_equal(a, b))
    return False


def full_mask(mask, shape: tuple) -> Value:
    """The mask broadcast over the trailing axes it does not index."""
    b = active_trace().builder
    mshape = tuple(shape_of(mask))
    if mshape != tuple(shape[: len(mshape)]):
        raise TraceError(f"boolean index of shape {mshape} does not match an array of shape {shape} "
                         f"(at {user_location()})")  # fmt: skip
    m = b.reshape(lift(mask), mshape + (1,) * (len(shape) - len(mshape)))
    return b.broadcast_to(m, tuple(shape))


def read(x: Tracer, mask) -> Masked:
    b = active_trace().builder
    m = full_mask(mask, x.shape)
    v = lift(x)
    safe = b.where(m, v, b.broadcast_to(b.scalar(1, v.dtype), v.shape))
    out = Masked(safe, active_trace())
    out.mask, out.full_mask, out.made_at = mask, m, user_location()
    return out


def write(x: Tracer, mask, val) -> Value:
    """The contents of ``x`` after ``x[mask] = val``."""
    b = active_trace().builder
    if isinstance(val, Masked):
        if not same_mask(val.mask, mask):
            _refuse("z[mask1] = f(x[mask2]) with two different masks")
        m, new = val.full_mask, b.cast(val.value, x.value.dtype)
    else:
        m = full_mask(mask, x.shape)
        rest = x.shape[len(shape_of(mask)) :]
        vshape = tuple(shape_of(val))
        if vshape and np.broadcast_shapes(vshape, rest) != rest:
            _refuse(f"z[mask] = a value of shape {vshape} (only scalars, rows of shape {rest} or "
                    "f(x[mask]) fit every mask)")  # fmt: skip
        new = b.broadcast_to(lift(val, x.value.dtype), x.shape)
    return b.where(m, new, lift(x))


def elementwise(fn, *inputs) -> Masked:
    """``fn`` (elementwise) on inputs where at least one is ``x[mask]``: computed on the full
    arrays, still masked by the one mask."""
    masked = [i for i in inputs if isinstance(i, Masked)]
    first = masked[0]
    if not all(same_mask(m.mask, first.mask) for m in masked[1:]):
        _refuse("arithmetic between x[mask1] and y[mask2] with different masks")
    plain = []
    for i in inputs:
        if isinstance(i, Masked):
            plain.append(wrap(i.value))
        elif shape_of(i) == ():
            plain.append(i)
        else:
            _refuse(f"arithmetic between x[mask] and an array of shape {shape_of(i)}")
    r = fn(*plain)
    out = Masked(r.value, active_trace())
    out.mask, out.full_mask, out.made_at = first.mask, first.full_mask, first.made_at
    return out
