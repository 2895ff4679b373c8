"""Counter-based random numbers (threefry-2x32, as JAX): ``key``, ``split``, ``uniform``,
``normal``, ``bernoulli``. A key is a plain uint32[2] array, so it traces like any input; the
same key gives the same numbers on every backend, equal to ``jax.random`` for the same key data.

Outside a trace these compute with NumPy; given a traced key they record the ``random_split``
and ``random_uniform`` ops (``bpir.ops.random``) and ordinary elementwise ops on their result."""

from __future__ import annotations

import sys

import numpy as np

from . import random_ref as ref

__all__ = ["bernoulli", "key", "normal", "split", "uniform"]

_FLOATS = {np.dtype(np.float32): "f32", np.dtype(np.float64): "f64"}


def key(seed: int) -> np.ndarray:
    """A key from an integer seed: uint32[2] = (high, low) 32 bits of the 64-bit seed, as JAX."""
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)):
        raise TypeError(
            f"bpir.random.key: seed must be a concrete int, got {type(seed).__name__} "
            "(inside a traced function, pass the key as an argument instead)"
        )
    seed = int(seed)
    if not -(2**63) <= seed < 2**64:
        raise ValueError(f"bpir.random.key: seed {seed} does not fit in 64 bits")
    seed %= 2**64
    return np.array([seed >> 32, seed & 0xFFFFFFFF], dtype=np.uint32)


def _tracer_type():
    from bpir.frontends.tracer import Tracer

    return Tracer


def _is_traced(x) -> bool:
    return type(x).__name__ == "Tracer" and isinstance(x, _tracer_type())


def _recording(k) -> bool:
    """Record ops (rather than compute now) for a traced key, or for a concrete key inside a
    trace of this thread: the graph then holds the key, not a constant of all the numbers."""
    if _is_traced(k):
        return True
    guard = sys.modules.get("bpir.frontends.numpy_random_guard")
    return guard is not None and guard.tracing_here()


def check_key(fn: str, k, arg: str = "key"):
    """The key as a NumPy array, or the tracer itself when traced; a clear error otherwise."""
    arr = k if _is_traced(k) else np.asarray(k)
    if arr.shape != (2,) or arr.dtype != np.uint32:
        got = f"{arr.dtype}[{','.join(map(str, arr.shape))}]"
        raise TypeError(f"{fn}: {arg} must be a uint32[2] array (from bpir.random.key or split), got {got}")
    return arr


def _check_shape(fn: str, shape) -> tuple[int, ...]:
    if isinstance(shape, (int, np.integer)):
        shape = (shape,)
    try:
        shape = tuple(int(d) for d in shape)
    except TypeError:
        raise TypeError(f"bpir.random.{fn}: shape must be a tuple of ints, got {shape!r}") from None
    if any(d < 0 for d in shape):
        raise ValueError(f"bpir.random.{fn}: shape {shape} has a negative dimension")
    return shape


def _check_float(fn: str, dtype) -> np.dtype:
    try:
        dt = np.dtype(dtype)
    except TypeError:
        dt = None
    if dt not in _FLOATS:
        raise TypeError(f"bpir.random.{fn}: dtype must be float32 or float64, got {dtype!r}")
    return dt


def _emit(op: str, k, **attrs):
    from bpir.frontends.tracer import active_trace, lift, wrap

    return wrap(active_trace().builder.emit(op, lift(k), **attrs))


def _unit(k, shape: tuple[int, ...], dt: np.dtype):
    """Floats in [0, 1) from the key's bits (a tracer when the key is traced)."""
    if _recording(k):
        return _emit("random_uniform", k, shape=shape, dtype=_FLOATS[dt])
    return ref.bits_to_unit(ref.random_bits(k, shape, dt.itemsize * 8), dt)


def split(key, num: int = 2):
    """``num`` new keys from ``key`` (uint32[num, 2]), as ``jax.random.split``."""
    k = check_key("bpir.random.split", key)
    if isinstance(num, bool) or not isinstance(num, (int, np.integer)) or num < 0:
        raise ValueError(f"bpir.random.split: num must be a non-negative int, got {num!r}")
    if _recording(k):
        return _emit("random_split", k, num=int(num))
    return ref.split(k, int(num))


def _scale(u, dt: np.dtype, minval, maxval):
    """max(minval, u * (maxval - minval) + minval) in ``dt``, as jax.random.uniform."""
    lo = minval if _is_traced(minval) else np.asarray(minval, dt)
    hi = maxval if _is_traced(maxval) else np.asarray(maxval, dt)
    return np.maximum(lo, u * (hi - lo) + lo)


def uniform(key, shape=(), dtype="float32", minval=0.0, maxval=1.0):
    """Uniform floats in [minval, maxval), as ``jax.random.uniform``."""
    k = check_key("bpir.random.uniform", key)
    shape = _check_shape("uniform", shape)
    dt = _check_float("uniform", dtype)
    u = _unit(k, shape, dt)
    if _is_traced(minval) or _is_traced(maxval) or (minval, maxval) != (0.0, 1.0):
        u = _scale(u, dt, minval, maxval)
    return u


def normal(key, shape=(), dtype="float32"):
    """Standard normal floats, as ``jax.random.normal``: sqrt(2) * erfinv(u), u uniform in
    (-1, 1), with XLA's erfinv polynomial (see ``random_ref.erfinv``)."""
    k = check_key("bpir.random.normal", key)
    shape = _check_shape("normal", shape)
    dt = _check_float("normal", dtype)
    lo = np.nextafter(dt.type(-1.0), dt.type(0.0))
    u = _scale(_unit(k, shape, dt), dt, lo, dt.type(1.0))
    return dt.type(np.sqrt(2.0)) * ref.erfinv(u)


def bernoulli(key, p=0.5, shape=None):
    """Booleans that are True with probability ``p``, as ``jax.random.bernoulli``."""
    k = check_key("bpir.random.bernoulli", key)
    if isinstance(p, (float, int)) and not isinstance(p, bool):
        p = np.float32(p)
    if not _is_traced(p):
        p = np.asarray(p)
    dt = _check_float("bernoulli", p.dtype)
    pshape = tuple(p.shape)
    shape = pshape if shape is None else _check_shape("bernoulli", shape)
    try:
        ok = np.broadcast_shapes(pshape, shape) == shape
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(f"bpir.random.bernoulli: p of shape {pshape} does not broadcast to shape {shape}")
    return _unit(k, shape, dt) < p
