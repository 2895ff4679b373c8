"""Threefry-2x32 random bits as ``@njit`` loops for the Numba backend (the driver calls
``random_uniform`` / ``random_split``). 32-bit words are held in uint64 and masked after every
add, so Numba's integer widening cannot change a bit; floats in [0, 1) are the top mantissa
bits times 2**-mantissa, exactly the values of JAX's bitcast."""

from __future__ import annotations

import numpy as np
from numba import njit

from . import library_kernels

_M32 = np.uint64(0xFFFFFFFF)
_ROT = np.array([[13, 15, 26, 6], [17, 29, 16, 24]], dtype=np.uint64)
_PARITY = np.uint64(0x1BD11BDA)
_U32_BITS = np.uint64(32)


@njit
def _threefry(k0, k1, x0, x1):
    ks = (k0, k1, k0 ^ k1 ^ _PARITY)
    a = (x0 + k0) & _M32
    b = (x1 + k1) & _M32
    for i in range(5):
        for j in range(4):
            r = _ROT[i % 2, j]
            a = (a + b) & _M32
            b = (((b << r) | (b >> (_U32_BITS - r))) & _M32) ^ a
        a = (a + ks[(i + 1) % 3]) & _M32
        b = (b + ks[(i + 2) % 3] + np.uint64(i + 1)) & _M32
    return a, b


@njit
def _fill_f32(k0, k1, out):
    for i in range(out.size):
        n = np.uint64(i)
        a, b = _threefry(k0, k1, n >> _U32_BITS, n & _M32)
        out[i] = np.float32((a ^ b) >> np.uint64(9)) * np.float32(2.0**-23)


@njit
def _fill_f64(k0, k1, out):
    for i in range(out.size):
        n = np.uint64(i)
        a, b = _threefry(k0, k1, n >> _U32_BITS, n & _M32)
        out[i] = np.float64((a << np.uint64(20)) | (b >> np.uint64(12))) * 2.0**-52


@njit
def _fill_split(k0, k1, out):
    for i in range(out.shape[0]):
        a, b = _threefry(k0, k1, np.uint64(0), np.uint64(i))
        out[i, 0] = np.uint32(a)
        out[i, 1] = np.uint32(b)


def random_uniform(key: np.ndarray, shape: tuple[int, ...], dtype) -> np.ndarray:
    out = np.empty(shape, dtype)
    fill = _fill_f32 if out.dtype == np.float32 else _fill_f64
    library_kernels.call(fill, np.uint64(key[0]), np.uint64(key[1]), out.reshape(-1))
    return out


def random_split(key: np.ndarray, num: int) -> np.ndarray:
    out = np.empty((num, 2), np.uint32)
    library_kernels.call(_fill_split, np.uint64(key[0]), np.uint64(key[1]), out)
    return out
