"""Indexing on tracers: basic indexing as slice + reshape, a few gathers, and functional
``__setitem__`` (a where over a padded value) so in-place NumPy code traces unchanged."""

from __future__ import annotations

import numpy as np

from bpir.errors import TraceError
from bpir.location import user_location

from .tracer import Tracer, active_trace, lift, operands, wrap


def _fail(msg: str):
    raise TraceError(f"{msg} (at {user_location()})")


def _is_index_array(k) -> bool:
    return isinstance(k, (Tracer, np.ndarray, list)) and not isinstance(k, bool)


def _basic_plan(shape, key):
    """Per axis (start, stop, step) plus the result shape of a basic index (ints, slices,
    None, Ellipsis)."""
    key = key if isinstance(key, tuple) else (key,)
    if sum(k is Ellipsis for k in key) > 1:
        _fail("an index can only have a single ellipsis")
    n_real = sum(k is not None and k is not Ellipsis for k in key)
    if n_real > len(shape):
        _fail(f"too many indices for an array of shape {shape}")
    if Ellipsis in key:
        i = key.index(Ellipsis)
        key = key[:i] + (slice(None),) * (len(shape) - n_real) + key[i + 1 :]
    key = key + (slice(None),) * (len(shape) - sum(k is not None for k in key))
    box, out_shape, axis = [], [], 0
    for k in key:
        if k is None:
            out_shape.append(1)
            continue
        d = shape[axis]
        if isinstance(k, slice):
            start, stop, step = k.indices(d)
            if step < 0:
                _fail("negative slice steps are not supported; use np.flip-free code")
            stop = max(start, stop)
            box.append((start, stop, step))
            out_shape.append(len(range(start, stop, step)))
        elif isinstance(k, (int, np.integer)):
            if not -d <= k < d:
                _fail(f"index {k} is out of bounds for axis {axis} with size {d}")
            k = int(k) % d
            box.append((k, k + 1, 1))
        else:
            _fail(f"unsupported index {k!r}")
        axis += 1
    return box, tuple(out_shape)


def getitem(x: Tracer, key) -> Tracer:
    keys = key if isinstance(key, tuple) else (key,)
    if any(_is_index_array(k) for k in keys):
        return _gather(x, keys)
    box, out_shape = _basic_plan(x.shape, key)
    b = active_trace().builder
    v = lift(x)
    if any((a, z, s) != (0, d, 1) for (a, z, s), d in zip(box, x.shape)):
        start, stop, step = zip(*box) if box else ((), (), ())
        v = b.slice(v, start=start, stop=stop, step=step)
    return wrap(b.reshape(v, out_shape))


def _gather(x: Tracer, keys) -> Tracer:
    b = active_trace().builder
    keys = [np.asarray(k) if isinstance(k, list) else k for k in keys]
    if any(getattr(k, "dtype", None) == np.bool_ for k in keys):
        _fail("boolean-mask indexing gives a data-dependent shape; use np.where(mask, x, 0)")
    if len(keys) == 1:
        # x[idx]: rows of x picked by integer indices (an embedding lookup)
        (idx,) = keys
        iv = lift(idx)
        flat = b.reshape(iv, (iv.type.size,) + (1,) * (x.ndim - 1))
        full = b.broadcast_to(flat, (iv.type.size, *x.shape[1:]))
        rows = b.take_along_axis(lift(x), full, axis=0)
        return wrap(b.reshape(rows, (*iv.shape, *x.shape[1:])))
    if len(keys) == 2 and x.ndim == 2 and isinstance(keys[0], np.ndarray):
        # x[np.arange(n), labels]: one element per row (the cross-entropy idiom)
        rows, labels = keys
        n = x.shape[0]
        if rows.shape == (n,) and np.array_equal(rows, np.arange(n)) and labels.shape == (n,):
            picked = b.take_along_axis(lift(x), b.reshape(lift(labels), (n, 1)), axis=1)
            return wrap(b.reshape(picked, (n,)))
    _fail("this advanced index is not supported; supported: x[idx] and x[np.arange(n), labels]")


def setitem(x: Tracer, key, val) -> Tracer:
    """The array ``x`` with ``x[key] = val`` applied, as a new value."""
    b = active_trace().builder
    if isinstance(key, (Tracer, np.ndarray)) and np.dtype(key.dtype) == np.bool_:
        if tuple(key.shape) != x.shape:
            _fail(f"mask of shape {tuple(key.shape)} does not match array of shape {x.shape}")
        mask = lift(key)
        new, old = operands(val, x, dtype=x.value.dtype)
        return wrap(b.where(mask, b.broadcast_to(new, x.shape), old))
    keys = key if isinstance(key, tuple) else (key,)
    if any(_is_index_array(k) for k in keys):
        _fail("assignment through integer-array indices is not supported")
    box, out_shape = _basic_plan(x.shape, key)
    region = tuple(len(range(a, z, s)) for a, z, s in box)
    (new,) = operands(val, dtype=x.value.dtype)
    if np.broadcast_shapes(new.shape, out_shape) != out_shape:
        _fail(f"cannot assign a value of shape {new.shape} to a region of shape {out_shape}")
    new = b.reshape(b.broadcast_to(new, out_shape), region)
    lo = tuple(a for a, _, _ in box)
    hi = tuple(d - a - ((n - 1) * s + 1 if n else 0) for d, (a, _, s), n in zip(x.shape, box, region))
    placed = b.pad(new, lo=lo, hi=hi, interior=tuple(s - 1 for _, _, s in box), value=0.0)
    mask = np.zeros(x.shape, dtype=bool)
    mask[tuple(slice(a, z, s) for a, z, s in box)] = True
    return wrap(b.where(b.const(mask), placed, lift(x)))
