"""More elementwise math: inverse trigonometric and hyperbolic functions, log2/log10, rounding,
floating-point classification, atan2/hypot/logaddexp, floor division and remainder, bitwise
and logical xor. Same operand rules as ``elementwise`` (one shape, one dtype, explicit
broadcasts); NumPy's function of the same name is the reference for every op here."""

from __future__ import annotations

import math

import numpy as np

from ..errors import ShapeError
from ..registry import Kind, OpDef, register
from ..types import TensorType, is_int
from .elementwise import _rule, _same_dtype, iteration_shape, unbroadcast

# op -> NumPy's name for it (the backends' tables and the coverage table use this)
NUMPY_NAMES = {
    "tan": "tan", "arcsin": "arcsin", "arccos": "arccos", "arctan": "arctan", "sinh": "sinh",
    "cosh": "cosh", "arcsinh": "arcsinh", "arccosh": "arccosh", "arctanh": "arctanh",
    "log2": "log2", "log10": "log10", "floor": "floor", "ceil": "ceil", "trunc": "trunc",
    "rint": "rint", "isnan": "isnan", "isinf": "isinf", "isfinite": "isfinite",
    "signbit": "signbit", "atan2": "arctan2", "hypot": "hypot", "logaddexp": "logaddexp",
    "copysign": "copysign", "nextafter": "nextafter", "floor_divide": "floor_divide",
    "remainder": "remainder", "logical_xor": "logical_xor", "bitwise_and": "bitwise_and",
    "bitwise_or": "bitwise_or", "bitwise_xor": "bitwise_xor", "bitwise_invert": "invert",
    "left_shift": "left_shift", "right_shift": "right_shift",
}  # fmt: skip


def _numpy(name: str):
    """The op's reference implementation: NumPy's function of the same meaning."""
    return getattr(np, NUMPY_NAMES[name])


def _s(b, v, like):
    return b.scalar(v, like.dtype)


def _int_rule(types, attrs):
    # on bool operands NumPy's bitwise functions are the logical ones (the frontend maps them)
    t = TensorType(iteration_shape(types), _same_dtype(types))
    if not is_int(t.dtype):
        raise ShapeError(f"needs integer operands, got {t.dtype}")
    return [t]


def _unary(name, grad=None, dtype=None):
    """grad(b, x, y, g) -> dx; ``differentiable=False`` ops have a zero gradient (as in JAX)."""

    def vjp(b, node, cts):
        (x,), (y,), (g,) = node.inputs, node.outputs, cts
        return [grad(b, x, y, g)]

    float_only = dtype is None
    register(OpDef(name, Kind.ELEMENTWISE, 1, _rule(result_dtype=dtype, float_only=float_only),
                   vjp=vjp if grad else None, differentiable=grad is not None,
                   float_only=float_only, impl=_numpy(name)))  # fmt: skip


def _sq(b, x):
    return b.mul(x, x)


_unary("tan", lambda b, x, y, g: b.mul(g, b.add(_s(b, 1, y), _sq(b, y))))
_unary("arcsin", lambda b, x, y, g: b.div(g, b.sqrt(b.sub(_s(b, 1, x), _sq(b, x)))))
_unary("arccos", lambda b, x, y, g: b.neg(b.div(g, b.sqrt(b.sub(_s(b, 1, x), _sq(b, x))))))
_unary("arctan", lambda b, x, y, g: b.div(g, b.add(_s(b, 1, x), _sq(b, x))))
_unary("sinh", lambda b, x, y, g: b.mul(g, b.cosh(x)))
_unary("cosh", lambda b, x, y, g: b.mul(g, b.sinh(x)))
_unary("arcsinh", lambda b, x, y, g: b.div(g, b.sqrt(b.add(_sq(b, x), _s(b, 1, x)))))
_unary("arccosh", lambda b, x, y, g: b.div(g, b.sqrt(b.sub(_sq(b, x), _s(b, 1, x)))))
_unary("arctanh", lambda b, x, y, g: b.div(g, b.sub(_s(b, 1, x), _sq(b, x))))
_unary("log2", lambda b, x, y, g: b.div(g, b.mul(x, _s(b, math.log(2), x))))
_unary("log10", lambda b, x, y, g: b.div(g, b.mul(x, _s(b, math.log(10), x))))
for _name in ("floor", "ceil", "trunc", "rint"):  # piecewise constant: zero gradient
    _unary(_name)
for _name in ("isnan", "isinf", "isfinite", "signbit"):
    _unary(_name, dtype="bool")


def _binary(name, grad=None, rule=None):
    """grad(b, x, y, out, g) -> (dx, dy) before un-broadcasting of scalar operands; without a
    ``rule`` the op is float-only."""

    def vjp(b, node, cts):
        (x, y), (out,), (g,) = node.inputs, node.outputs, cts
        gx, gy = grad(b, x, y, out, g)
        return [gx and unbroadcast(b, gx, x), gy and unbroadcast(b, gy, y)]

    register(OpDef(name, Kind.ELEMENTWISE, 2, rule or _rule(float_only=True),
                   vjp=vjp if grad else None, differentiable=grad is not None,
                   float_only=rule is None, impl=_numpy(name)))  # fmt: skip


def _atan2_grad(b, y, x, out, g):
    r2 = b.add(_sq(b, x), _sq(b, y))
    return b.div(b.mul(g, x), r2), b.neg(b.div(b.mul(g, y), r2))


def _logaddexp_grad(b, x, y, out, g):
    return b.mul(g, b.exp(b.sub(x, out))), b.mul(g, b.exp(b.sub(y, out)))


def _remainder_grad(b, x, y, out, g):
    # x mod y = x - y * floor(x / y); floor is piecewise constant
    return g, b.neg(b.mul(g, b.floor_divide(x, y)))


def _copysign_grad(b, x, y, out, g):
    # |x| with y's sign: d/dx = sign(x) * sign(out) (zero where x == 0)
    return b.mul(g, b.mul(b.sign(x), b.sign(out))), None


def _no_bool(types, attrs):
    t = _rule()(types, attrs)
    if t[0].dtype == "bool":
        raise ShapeError("is not defined on bool operands (as in NumPy)")
    return t


_binary("atan2", _atan2_grad)
_binary("hypot", lambda b, x, y, out, g: (b.div(b.mul(g, x), out), b.div(b.mul(g, y), out)))
_binary("logaddexp", _logaddexp_grad)
_binary("copysign", _copysign_grad)
_binary("nextafter")
_binary("floor_divide", rule=_no_bool)  # piecewise constant: zero gradient
_binary("remainder", _remainder_grad, rule=_no_bool)
_binary("logical_xor", rule=_rule(bool_only=True))
for _name in ("bitwise_and", "bitwise_or", "bitwise_xor", "left_shift", "right_shift"):
    _binary(_name, rule=_int_rule)
register(OpDef("bitwise_invert", Kind.ELEMENTWISE, 1, _int_rule, differentiable=False,
               impl=_numpy("bitwise_invert")))  # fmt: skip
