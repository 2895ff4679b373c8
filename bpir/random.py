"""Counter-based random numbers (threefry-2x32, as JAX): ``key``, ``split``, ``uniform``,
``normal``, ``bernoulli``. A key is a plain uint32[2] array, so it traces like any input; the
same key gives the same numbers on every backend, equal to ``jax.random`` for the same key data."""

from __future__ import annotations

import numpy as np

from . import random_ref as ref

__all__ = ["bernoulli", "key", "normal", "split", "uniform"]

_FLOATS = {np.dtype(np.float32): "float32", np.dtype(np.float64): "float64"}


def key(seed: int) -> np.ndarray:
    """A key from an integer seed: uint32[2] = (high, low) 32 bits of the 64-bit seed, as JAX."""
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"bpir.random.key: seed must be an int, got {type(seed).__name__}")
    seed = int(seed)
    if not -(2**63) <= seed < 2**64:
        raise ValueError(f"bpir.random.key: seed {seed} does not fit in 64 bits")
    seed %= 2**64
    return np.array([seed >> 32, seed & 0xFFFFFFFF], dtype=np.uint32)


def _check_key(fn: str, k) -> np.ndarray:
    arr = np.asarray(k)
    if arr.shape != (2,) or arr.dtype != np.uint32:
        got = f"{arr.dtype}[{','.join(map(str, arr.shape))}]"
        raise TypeError(
            f"bpir.random.{fn}: key must be a uint32[2] array (from bpir.random.key or split), got {got}"
        )
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


def split(key, num: int = 2) -> np.ndarray:
    """``num`` new keys from ``key`` (uint32[num, 2]), as ``jax.random.split``."""
    k = _check_key("split", key)
    if isinstance(num, bool) or not isinstance(num, (int, np.integer)) or num < 0:
        raise ValueError(f"bpir.random.split: num must be a non-negative int, got {num!r}")
    return ref.split(k, int(num))


def uniform(key, shape=(), dtype="float32", minval=0.0, maxval=1.0) -> np.ndarray:
    """Uniform floats in [minval, maxval), as ``jax.random.uniform``."""
    k = _check_key("uniform", key)
    shape = _check_shape("uniform", shape)
    dt = _check_float("uniform", dtype)
    return ref.uniform(k, shape, dt, float(minval), float(maxval))


def normal(key, shape=(), dtype="float32") -> np.ndarray:
    """Standard normal floats, as ``jax.random.normal`` (sqrt(2) * erfinv(uniform(-1, 1)))."""
    k = _check_key("normal", key)
    shape = _check_shape("normal", shape)
    dt = _check_float("normal", dtype)
    return ref.normal(k, shape, dt)


def bernoulli(key, p=0.5, shape=None) -> np.ndarray:
    """Booleans that are True with probability ``p``, as ``jax.random.bernoulli``."""
    k = _check_key("bernoulli", key)
    if isinstance(p, (float, int)) and not isinstance(p, bool):
        p = np.float32(p)
    p = np.asarray(p)
    dt = _check_float("bernoulli", p.dtype)
    shape = p.shape if shape is None else _check_shape("bernoulli", shape)
    try:
        np.broadcast_shapes(p.shape, shape)
    except ValueError:
        raise ValueError(
            f"bpir.random.bernoulli: p of shape {p.shape} does not broadcast to shape {shape}"
        ) from None
    return ref.uniform(k, shape, dt, 0.0, 1.0) < p
