"""Random ops (threefry-2x32 counter-based bits, as JAX): a key is a u32[2] value.

``random_split`` derives ``num`` keys; ``random_uniform`` gives floats in [0, 1) whose bits equal
``jax.random.uniform``'s. Everything else (ranges, normal, bernoulli, dropout) is ordinary IR
built on these two. Neither is differentiable: a key has no gradient."""

from __future__ import annotations

from .. import attr_types as ty
from ..errors import ShapeError
from ..registry import REQUIRED, Kind, OpDef, register
from ..types import TensorType, to_numpy_dtype
from . import kernels

UNIFORM_DTYPES = ("f32", "f64")


def check_key(t: TensorType) -> None:
    if t.shape != (2,) or t.dtype != "u32":
        raise ShapeError(f"key must be u32[2], got {t}")


def _split_rule(types, a):
    (key,) = types
    check_key(key)
    num = a["num"]
    if not isinstance(num, int) or num < 0:
        raise ShapeError(f"num must be a non-negative int, got {num!r}")
    return [TensorType((num, 2), "u32")]


def _uniform_rule(types, a):
    (key,) = types
    check_key(key)
    shape, dtype = a["shape"], a["dtype"]
    if not isinstance(shape, tuple) or any(not isinstance(d, int) or d < 0 for d in shape):
        raise ShapeError(f"shape must be a tuple of non-negative ints, got {shape!r}")
    if dtype not in UNIFORM_DTYPES:
        raise ShapeError(f"dtype must be one of {UNIFORM_DTYPES}, got {dtype!r}")
    return [TensorType(shape, dtype)]


register(OpDef("random_split", Kind.OTHER, 1, _split_rule, attrs={"num": REQUIRED},
               attr_types={"num": ty.POSITIVE}, differentiable=False, impl=kernels.random_split))  # fmt: skip
register(OpDef("random_uniform", Kind.OTHER, 1, _uniform_rule,
               attrs={"shape": REQUIRED, "dtype": "f32"}, attr_types={"shape": ty.SHAPE, "dtype": ty.DTYPE},
               differentiable=False,
               impl=lambda key, shape, dtype: kernels.random_uniform(key, shape, to_numpy_dtype(dtype))))  # fmt: skip
