"""Elementwise math for the Numba loop kernels that LLVM can vectorise: pip's Numba has no
vector math library, so ``np.exp``/``np.tanh`` in a loop are scalar libm calls that keep the
whole loop scalar. Instead the kernels call these helpers (every generated kernel module
imports them): range reduction by bit moves (two tiny ``@intrinsic`` bitcasts), then only
multiply-adds, one division for sigmoid and tanh, and selects rather than branches (a branch
around the arithmetic stops LLVM vectorising a loop), so a float32 loop runs 16 lanes wide
on AVX-512.

Error bounds, tested in tests/test_numba_backend.py over each type's whole range (inf, nan,
overflow, subnormal results and -0.0 included), in ulps of the reference:
  float32 (Cephes expf / tanhf), against float64 NumPy rounded to float32: exp and tanh at
  most 1 ulp, sigmoid at most 2 ulp;
  float64, against NumPy float64 (exp, tanh) and a stable float64 sigmoid: exp at most 1 ulp,
  sigmoid at most 2 ulp, tanh at most 3 ulp (7e-16 relative, far inside the suite's float64
  tolerance)."""

from __future__ import annotations

import hashlib
import math
from functools import cache

import numpy as np
from numba import njit, types
from numba.extending import intrinsic

# (dtype, op) -> the helper call replacing the op's NumPy expression in a region
POLYNOMIAL = {
    ("f32", "exp"): "exp_f32({0})",
    ("f32", "tanh"): "tanh_f32({0})",
    ("f32", "sigmoid"): "sigmoid_f32({0})",
    ("f64", "exp"): "exp_f64({0})",
    ("f64", "tanh"): "tanh_f64({0})",
    ("f64", "sigmoid"): "sigmoid_f64({0})",
}
HELPERS = sorted({call.split("(")[0] for call in POLYNOMIAL.values()})


def import_line() -> str:
    """The import of every helper, the same for every generated module (so the kernel cache
    shares one header module across models); it names this file's digest, so an edited helper
    changes the kernel modules' cache keys (a compiled kernel has its helpers inlined)."""
    return f"from bpir.backends.numba.fastmath import {', '.join(HELPERS)}  # fastmath {_digest()}\n"


@cache
def _digest() -> str:
    with open(__file__, "rb") as fh:
        return hashlib.sha256(fh.read()).hexdigest()[:16]


f32 = np.float32


@intrinsic
def f32_bits(typingctx, x):
    # the bits of a float32 as an int32 (a register move; it vectorises)
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(types.int32))

    return types.int32(types.float32), codegen


@intrinsic
def bits_f32(typingctx, x):
    # the float32 whose bits are an int32
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(types.float32))

    return types.float32(types.int32), codegen


@njit(inline="always")
def exp_core(x):
    # exp of a float32 that is not NaN (Cephes expf): x = k*ln2 + r with k an integer and
    # |r| <= ln2/2 (ln2 in two parts, so k*ln2 is exact enough), exp(r) by a degree-6 minimax
    # polynomial, and 2**k built in the exponent bits in two halves (no overflow of the scale
    # before the product, subnormal results rounded once)
    x = min(max(x, f32(-104.0)), f32(89.0))  # beyond, float32 results no longer change
    t = x * f32(1.4426950408889634) + f32(12582912.0)  # 1.5 * 2**23: rounds x/ln2 to k
    k = t - f32(12582912.0)
    r = x - k * f32(0.693359375)
    r = r - k * f32(-2.12194440e-4)
    p = f32(1.9875691500e-4) * r + f32(1.3981999507e-3)
    p = p * r + f32(8.3334519073e-3)
    p = p * r + f32(4.1665795894e-2)
    p = p * r + f32(1.6666665459e-1)
    p = p * r + f32(5.0000001201e-1)
    p = p * (r * r) + r + f32(1.0)
    ki = f32_bits(t) - np.int32(0x4B400000)  # t's low bits hold k
    half = ki >> 1
    return p * bits_f32((half + np.int32(127)) << 23) * bits_f32((ki - half + np.int32(127)) << 23)


@njit(inline="always")
def exp_f32(x):
    # straight-line code then a select, in every helper: a branch around the arithmetic
    # would stop LLVM vectorising a serial loop
    e = exp_core(x)
    return e if x == x else x


@njit(inline="always")
def sigmoid_f32(x):
    e = exp_core(-abs(x))  # never overflows: 1 / (1 + e) or, for x < 0, e / (1 + e)
    s = (f32(1.0) if x >= 0 else e) / (f32(1.0) + e)
    return s if x == x else x


@njit(inline="always")
def tanh_f32(x):
    a = abs(x)
    s = a * a  # below 0.625, Cephes tanhf's odd minimax polynomial: no cancellation near 0
    p = f32(-5.70498872745e-3) * s + f32(2.06390887954e-2)
    p = p * s - f32(5.37397155531e-2)
    p = p * s + f32(1.33314422036e-1)
    p = p * s - f32(3.33332819422e-1)
    small = p * s * a + a
    large = f32(1.0) - f32(2.0) / (exp_core(a + a) + f32(1.0))
    t = math.copysign(small if a < f32(0.625) else large, x)  # odd; keeps the sign of -0.0
    return t if x == x else x


@intrinsic
def f64_bits(typingctx, x):
    # the bits of a float64 as an int64
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(types.int64))

    return types.int64(types.float64), codegen


@intrinsic
def bits_f64(typingctx, x):
    # the float64 whose bits are an int64
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(types.float64))

    return types.float64(types.int64), codegen


@njit(inline="always")
def exp_core64(x):
    # exp of a float64 that is not NaN: as exp_core, with ln2 in two parts (33 + 53 bits)
    # and the degree-13 Taylor polynomial of exp(r) (truncation < 4e-18 relative)
    x = min(max(x, -746.0), 710.0)  # beyond, float64 results no longer change
    t = x * 1.4426950408889634 + 6755399441055744.0  # 1.5 * 2**52: rounds x/ln2 to k
    k = t - 6755399441055744.0
    r = x - k * 0.6931471803691238
    r = r - k * 1.9082149292705877e-10
    p = 1.6059043836821613e-10 * r + 2.08767569878681e-09
    p = p * r + 2.505210838544172e-08
    p = p * r + 2.755731922398589e-07
    p = p * r + 2.7557319223985893e-06
    p = p * r + 2.48015873015873e-05
    p = p * r + 0.0001984126984126984
    p = p * r + 0.001388888888888889
    p = p * r + 0.008333333333333333
    p = p * r + 0.041666666666666664
    p = p * r + 0.16666666666666666
    p = p * r + 0.5
    p = p * (r * r) + r + 1.0
    ki = f64_bits(t) - np.int64(0x4338000000000000)  # t's low bits hold k
    half = ki >> 1
    return p * bits_f64((half + np.int64(1023)) << 52) * bits_f64((ki - half + np.int64(1023)) << 52)


@njit(inline="always")
def exp_f64(x):
    e = exp_core64(x)
    return e if x == x else x


@njit(inline="always")
def sigmoid_f64(x):
    e = exp_core64(-abs(x))  # never overflows
    s = (1.0 if x >= 0 else e) / (1.0 + e)
    return s if x == x else x


@njit(inline="always")
def tanh_f64(x):
    a = abs(x)
    y = a + a
    # below 0.625: tanh = m / (m + 2) with m = expm1(2|x|) by its degree-20 Taylor polynomial
    # (truncation < 4e-17 relative), no cancellation near 0; above: 1 - 2 / (exp(2|x|) + 1)
    p = 4.110317623312165e-19 * y + 8.22063524662433e-18
    p = p * y + 1.5619206968586225e-16
    p = p * y + 2.8114572543455206e-15
    p = p * y + 4.779477332387385e-14
    p = p * y + 7.647163731819816e-13
    p = p * y + 1.1470745597729725e-11
    p = p * y + 1.6059043836821613e-10
    p = p * y + 2.08767569878681e-09
    p = p * y + 2.505210838544172e-08
    p = p * y + 2.755731922398589e-07
    p = p * y + 2.7557319223985893e-06
    p = p * y + 2.48015873015873e-05
    p = p * y + 0.0001984126984126984
    p = p * y + 0.001388888888888889
    p = p * y + 0.008333333333333333
    p = p * y + 0.041666666666666664
    p = p * y + 0.16666666666666666
    p = p * y + 0.5
    m = p * (y * y) + y
    t = math.copysign(m / (m + 2.0) if a < 0.625 else 1.0 - 2.0 / (exp_core64(y) + 1.0), x)
    return t if x == x else x
