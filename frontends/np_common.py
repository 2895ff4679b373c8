"""Helpers shared by the NumPy function handlers: axis normalisation and refusing keywords
that a handler does not implement (a keyword is never silently dropped)."""

from __future__ import annotations

from bpir.builder import Builder
from bpir.errors import ShapeError, TraceError
from bpir.location import user_location
from bpir.types import is_float

from .tracer import active_trace, result_dtype, shape_of


def builder() -> Builder:
    return active_trace().builder


def fail(msg: str):
    """Raise a TraceError at the user's line."""
    loc = user_location()
    raise TraceError(msg + (f" (at {loc})" if loc else ""))


def refuse(fn: str, **given) -> None:
    """Refuse every keyword given a value other than None (``out=``, ``where=``, ...)."""
    for name, value in given.items():
        if value is not None:
            fail(f"np.{fn}: the keyword {name}= is not supported on traced values")


def refuse_unless(fn: str, name: str, value, *allowed) -> None:
    """Refuse ``name=value`` unless it is one of the values the handler implements."""
    if not any(value is a or (type(value) is type(a) and value == a) for a in allowed):
        fail(f"np.{fn}: {name}={value!r} is not supported on traced values (supported: "
             + ", ".join(repr(a) for a in allowed) + ")")  # fmt: skip


def float_dtype(*xs) -> str:
    d = result_dtype(*xs)
    return d if is_float(d) else "f64"


def norm_axis(axis: int, ndim: int) -> int:
    if not -ndim <= axis < max(ndim, 1):
        raise ShapeError(f"axis {axis} is out of bounds for an array of rank {ndim} at {user_location()}")
    return axis % max(ndim, 1)


def axes_of(x, axis) -> tuple[int, ...]:
    """Sorted, non-negative axes for ``axis`` (None: all axes)."""
    nd = len(shape_of(x))
    if axis is None:
        return tuple(range(nd))
    axes = axis if isinstance(axis, (tuple, list)) else (axis,)
    out = {norm_axis(int(a), nd) for a in axes}
    if len(out) != len(axes):
        raise ShapeError(f"repeated axis in {axis} at {user_location()}")
    return tuple(sorted(out))
