"""NumPy functions that model code uses to shape and fill arrays: ``np.pad``, the ``split``
family, ``sliding_window_view``, views (``views``) and traced array creation (``like=``, the
``*_like`` functions with ``shape=``). Looked up first by ``Tracer.__array_function__``."""

from __future__ import annotations

import itertools
import numbers

import numpy as np

from bpir.errors import ShapeError, TraceError
from bpir.ir import Value
from bpir.location import user_location
from bpir.types import TensorType, dtype_name

from . import views
from .tracer import Tracer, active_trace, lift, result_dtype, shape_of, wrap


def _fail(msg: str):
    raise TraceError(f"{msg} (at {user_location()})")


def _axis_slice(b, v: Value, axis: int, start: int, stop: int, step: int = 1) -> Value:
    key = [slice(None)] * v.type.ndim
    key[axis] = slice(start, stop, step)
    return views.basic_plan(v.shape, tuple(key)).read(b, v)


# -- np.pad ------------------------------------------------------------------------------------

PAD_MODES = ("constant", "edge", "reflect", "symmetric", "wrap")


def _pad_widths(pad_width, ndim: int) -> list[tuple[int, int]]:
    w = np.asarray(pad_width)
    if w.dtype.kind not in "iu":
        _fail(f"np.pad: pad_width must be integers, got {pad_width!r}")
    try:
        w = np.broadcast_to(w, (ndim, 2))
    except ValueError:
        _fail(f"np.pad: pad_width {pad_width!r} does not fit an array of rank {ndim}")
    if (w < 0).any():
        _fail("np.pad: pad_width must not be negative")
    return [(int(a), int(z)) for a, z in w]


def pad(array, pad_width, mode: str = "constant", **kwargs) -> Tracer:
    """np.pad in the modes constant, edge, reflect, symmetric and wrap; others are refused."""
    if not isinstance(mode, str) or mode not in PAD_MODES:
        _fail(f"np.pad(mode={mode!r}) is not supported on traced values; modes: {', '.join(PAD_MODES)}")
    allowed = {"constant": {"constant_values"}, "reflect": {"reflect_type"}, "symmetric": {"reflect_type"}}
    extra = set(kwargs) - allowed.get(mode, set())
    if extra:
        _fail(f"np.pad(mode={mode!r}) does not take {sorted(extra)}")
    if kwargs.get("reflect_type", "even") != "even":
        _fail("np.pad(reflect_type='odd') is not supported; only 'even'")
    b = active_trace().builder
    v = lift(array)
    widths = _pad_widths(pad_width, v.type.ndim)
    if mode == "constant":
        return wrap(_pad_constant(b, v, widths, kwargs.get("constant_values", 0)))
    for axis, (lo, hi) in enumerate(widths):
        if lo or hi:
            v = _pad_axis(b, v, axis, lo, hi, mode)
    return wrap(v)


def _pad_constant(b, v: Value, widths, values) -> Value:
    if isinstance(values, Tracer):
        _fail("np.pad: traced constant_values are not supported; pad with 0 and add them with np.where")
    vals = np.broadcast_to(np.asarray(values, dtype=np.float64), (v.type.ndim, 2))
    if len({float(c) for c in vals.reshape(-1)}) == 1:
        lo, hi = zip(*widths) if widths else ((), ())
        return b.pad(v, lo=lo, hi=hi, interior=(0,) * v.type.ndim, value=_cast_scalar(vals.flat[0], v.dtype))
    for axis, ((lo, hi), (c_lo, c_hi)) in enumerate(zip(widths, vals)):
        for side, (n, c) in enumerate(((lo, c_lo), (hi, c_hi))):
            lo_w = [0] * v.type.ndim
            hi_w = [0] * v.type.ndim
            (hi_w if side else lo_w)[axis] = n
            v = b.pad(
                v, lo=tuple(lo_w), hi=tuple(hi_w), interior=(0,) * v.type.ndim, value=_cast_scalar(c, v.dtype)
            )
    return v


def _cast_scalar(c, dtype: str):
    """The pad value as the array's dtype would hold it (np.pad casts it)."""
    value = np.asarray(c).astype(np.dtype(TensorType((), dtype).np_dtype)).item()
    return float(value) if not isinstance(value, bool) else float(value)


def _pad_axis(b, v: Value, axis: int, lo: int, hi: int, mode: str) -> Value:
    n = v.shape[axis]
    if n == 0:
        _fail(f"np.pad(mode={mode!r}) of an empty axis")
    limit = {"edge": None, "reflect": n - 1, "symmetric": n, "wrap": n}[mode]
    if limit is not None and max(lo, hi) > limit:
        _fail(f"np.pad(mode={mode!r}) wider than the axis ({max(lo, hi)} > {limit}) is not supported")
    if mode == "edge":
        left = _axis_slice(b, v, axis, 0, 1)
        right = _axis_slice(b, v, axis, n - 1, n)
        parts = [_repeat(b, left, axis, lo), v, _repeat(b, right, axis, hi)]
    elif mode == "wrap":
        parts = [_axis_slice(b, v, axis, n - lo, n), v, _axis_slice(b, v, axis, 0, hi)]
    else:
        skip = 1 if mode == "reflect" else 0  # reflect leaves out the edge element itself
        left = views.reverse(b, _axis_slice(b, v, axis, skip, skip + lo), axis) if lo else None
        right = views.reverse(b, _axis_slice(b, v, axis, n - skip - hi, n - skip), axis) if hi else None
        parts = [left, v, right]
    parts = [p for p in parts if p is not None and p.shape[axis]]
    return parts[0] if len(parts) == 1 else b.concatenate(*parts, axis=axis)


def _repeat(b, edge: Value, axis: int, k: int) -> Value | None:
    if not k:
        return None
    shape = list(edge.shape)
    shape[axis] = k
    return b.broadcast_to(edge, tuple(shape))


# -- split -------------------------------------------------------------------------------------


def _split_points(n: int, sections, equal: bool) -> list[int]:
    if isinstance(sections, numbers.Integral) and not isinstance(sections, bool):
        k = int(sections)
        if k <= 0:
            _fail("number of sections must be larger than 0")
        if equal and n % k:
            _fail(f"array split does not result in an equal division ({n} into {k})")
        size, extra = divmod(n, k)
        sizes = [size + 1] * extra + [size] * (k - extra)
        return list(itertools.accumulate(sizes))[:-1]
    return [int(i) for i in sections]


def split(ary, indices_or_sections, axis: int = 0) -> list[Tracer]:
    return _split(ary, indices_or_sections, axis, equal=True)


def array_split(ary, indices_or_sections, axis: int = 0) -> list[Tracer]:
    return _split(ary, indices_or_sections, axis, equal=False)


def _split(ary, sections, axis: int, equal: bool) -> list[Tracer]:
    """Pieces along ``axis``: views of ``ary``, as NumPy's."""
    x = ary if isinstance(ary, Tracer) else wrap(lift(ary))
    if not -x.ndim <= axis < x.ndim:
        _fail(f"axis {axis} is out of bounds for an array of rank {x.ndim}")
    axis %= x.ndim
    n = x.shape[axis]
    points = [0, *_split_points(n, sections, equal), n]
    pieces = []
    for start, stop in zip(points[:-1], points[1:]):
        key = [slice(None)] * x.ndim
        key[axis] = slice(start, stop)
        pieces.append(views.index(x, tuple(key)))
    return pieces


def hsplit(ary, indices_or_sections) -> list[Tracer]:
    if len(shape_of(ary)) == 0:
        _fail("hsplit only works on arrays of 1 or more dimensions")
    return split(ary, indices_or_sections, axis=1 if len(shape_of(ary)) > 1 else 0)


def vsplit(ary, indices_or_sections) -> list[Tracer]:
    if len(shape_of(ary)) < 2:
        _fail("vsplit only works on arrays of 2 or more dimensions")
    return split(ary, indices_or_sections, axis=0)


def dsplit(ary, indices_or_sections) -> list[Tracer]:
    if len(shape_of(ary)) < 3:
        _fail("dsplit only works on arrays of 3 or more dimensions")
    return split(ary, indices_or_sections, axis=2)


# -- sliding_window_view -------------------------------------------------------------------------


def sliding_window_view(
    x, window_shape, axis=None, *, subok: bool = False, writeable: bool = False
) -> Tracer:
    """Every window as a new trailing axis (a stack of shifted slices; NumPy's is a read-only view)."""
    if writeable:
        _fail("sliding_window_view(writeable=True) is not supported on traced values")
    b = active_trace().builder
    v = lift(x)
    window = tuple(int(w) for w in np.atleast_1d(window_shape))
    axes = (
        tuple(range(v.type.ndim))
        if axis is None
        else tuple(int(a) % v.type.ndim for a in np.atleast_1d(axis))
    )
    if len(window) != len(axes):
        _fail(f"sliding_window_view: window_shape {window} does not match axes {axes}")
    out_shape = list(v.shape)
    for a, w in zip(axes, window):
        if not 0 <= w <= out_shape[a]:
            _fail(f"sliding_window_view: window {w} does not fit axis {a} of size {out_shape[a]}")
        out_shape[a] -= w - 1
    pieces = []
    for offsets in itertools.product(*(range(w) for w in window)):
        p = v
        for a, j in zip(axes, offsets):
            p = _axis_slice(b, p, a, j, j + out_shape[a])
        pieces.append(b.reshape(p, (*out_shape, 1)))
    stacked = pieces[0] if len(pieces) == 1 else b.concatenate(*pieces, axis=len(out_shape))
    return wrap(b.reshape(stacked, (*out_shape, *window)))


# -- traced array creation -------------------------------------------------------------------------


def _shape(shape) -> tuple[int, ...]:
    return tuple(int(d) for d in np.atleast_1d(shape)) if np.ndim(shape) else (int(shape),)


def _filled(shape, fill, dtype) -> Tracer:
    b = active_trace().builder
    if isinstance(fill, Tracer):
        dt = dtype_name(dtype) if dtype is not None else result_dtype(fill)
        v = lift(fill, dt)
        try:
            return wrap(b.broadcast_to(v, shape))
        except ShapeError as e:
            _fail(f"np.full: {e}")
    dt = dtype_name(dtype) if dtype is not None else dtype_name(np.asarray(fill).dtype)
    return wrap(b.full(TensorType(shape, dt), fill))


def _creation(fill):
    def create(shape, dtype=float, order: str = "C", **kwargs) -> Tracer:
        """np.zeros / np.ones / np.empty with ``like=`` a traced array: a traced array (np.empty
        gives zeros), so it can be filled with traced values."""
        kwargs.pop("device", None)
        if kwargs:
            raise TypeError(f"unexpected keywords {sorted(kwargs)}")
        return _filled(_shape(shape), fill, dtype)

    return create


def full(shape, fill_value, dtype=None, order: str = "C", **kwargs) -> Tracer:
    kwargs.pop("device", None)
    if kwargs:
        raise TypeError(f"np.full: unexpected keywords {sorted(kwargs)}")
    return _filled(_shape(shape), fill_value, dtype)


def _like(fill):
    def like(a, dtype=None, order: str = "K", subok: bool = True, shape=None, **kwargs) -> Tracer:
        """np.zeros_like / ones_like / empty_like of a traced array, optionally another shape."""
        kwargs.pop("device", None)
        if kwargs:
            raise TypeError(f"unexpected keywords {sorted(kwargs)}")
        return _filled(shape_of(a) if shape is None else _shape(shape), fill, dtype or result_dtype(a))

    return like


def full_like(
    a, fill_value, dtype=None, order: str = "K", subok: bool = True, shape=None, **kwargs
) -> Tracer:
    kwargs.pop("device", None)
    if kwargs:
        raise TypeError(f"np.full_like: unexpected keywords {sorted(kwargs)}")
    dt = dtype if dtype is not None else (result_dtype(a) if isinstance(a, Tracer) else np.asarray(a).dtype)
    return _filled(shape_of(a) if shape is None else _shape(shape), fill_value, dt)


FUNCTIONS = {
    np.pad: pad, np.split: split, np.array_split: array_split, np.hsplit: hsplit, np.vsplit: vsplit,
    np.dsplit: dsplit, np.lib.stride_tricks.sliding_window_view: sliding_window_view,
    np.zeros: _creation(0), np.ones: _creation(1), np.empty: _creation(0), np.full: full,
    np.zeros_like: _like(0), np.ones_like: _like(1), np.empty_like: _like(0), np.full_like: full_like,
    **views.FUNCTIONS,
}  # fmt: skip
