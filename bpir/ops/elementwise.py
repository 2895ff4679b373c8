"""Elementwise ops: operands share one shape (rank-0 operands broadcast) and one dtype.

Broadcasting between non-scalar shapes is explicit in the IR (``broadcast_to``), so each
elementwise node has one iteration space: what fusion and the loop backends rely on."""

from __future__ import annotations

import math

import numpy as np

from .. import attr_types as ty
from ..errors import ShapeError
from ..registry import REQUIRED, Kind, OpDef, register
from ..types import TensorType, is_float, to_numpy_dtype
from . import kernels

# op -> NumPy's function of the same meaning (the reference implementation)
NUMPY_FUNCTIONS = {
    "neg": np.negative, "exp": np.exp, "log": np.log, "log1p": np.log1p, "expm1": np.expm1,
    "tanh": np.tanh, "sqrt": np.sqrt, "rsqrt": kernels.rsqrt, "abs": np.abs, "sign": np.sign,
    "sin": np.sin, "cos": np.cos, "sigmoid": kernels.sigmoid, "reciprocal": np.reciprocal,
    "erf": kernels.erf, "logical_not": np.logical_not, "add": np.add, "sub": np.subtract,
    "mul": np.multiply, "div": np.divide, "pow": np.power, "maximum": np.maximum,
    "minimum": np.minimum, "gt": np.greater, "ge": np.greater_equal, "lt": np.less,
    "le": np.less_equal, "eq": np.equal, "ne": np.not_equal, "logical_and": np.logical_and,
    "logical_or": np.logical_or,
}  # fmt: skip
COMPARISONS = ("gt", "ge", "lt", "le", "eq", "ne")
LOGICAL = ("logical_and", "logical_or")


def iteration_shape(types: list[TensorType]) -> tuple[int, ...]:
    shapes = {t.shape for t in types if t.shape != ()}
    if len(shapes) > 1:
        raise ShapeError(
            "operand shapes " + ", ".join(str(t.shape) for t in types) + " differ "
            "(elementwise operands must match or be scalars; broadcast explicitly)"
        )
    return shapes.pop() if shapes else ()


def _same_dtype(types: list[TensorType]) -> str:
    dtypes = {t.dtype for t in types}
    if len(dtypes) != 1:
        raise ShapeError("operand dtypes " + ", ".join(t.dtype for t in types) + " differ")
    return dtypes.pop()


def _rule(result_dtype=None, float_only=False, bool_only=False, no_bool=False):
    def infer(types, attrs):
        shape = iteration_shape(types)
        dtype = _same_dtype(types)
        if no_bool and dtype == "bool":
            raise ShapeError("is not defined on bool operands (as in NumPy; use logical_not / logical_xor)")
        if float_only and not is_float(dtype):
            raise ShapeError(f"needs a floating-point operand, got {dtype}")
        if bool_only and dtype != "bool":
            raise ShapeError(f"needs bool operands, got {dtype}")
        return [TensorType(shape, result_dtype or dtype)]

    return infer


def _where_rule(types, attrs):
    cond, a, b = types
    if cond.dtype != "bool":
        raise ShapeError(f"condition must be bool, got {cond.dtype}")
    return [TensorType(iteration_shape(types), _same_dtype([a, b]))]


def _cast_rule(types, attrs):
    (t,) = types
    return [TensorType(t.shape, attrs["dtype"])]


def unbroadcast(b, g, x):
    """Cotangent for operand ``x`` of an elementwise node: summed if ``x`` was a scalar."""
    if x.shape == g.shape:
        return g
    return b.reduce_sum(g, axes=tuple(range(g.type.ndim)), keepdims=False)


def _unary(name, grad=None, float_only=True):
    """grad(b, x, y, g) -> dx, where y is the op's output."""

    def vjp(b, node, cts):
        (x,), (y,), (g,) = node.inputs, node.outputs, cts
        return [grad(b, x, y, g)]

    rule = _rule(float_only=float_only, no_bool=name == "neg")
    register(OpDef(name, Kind.ELEMENTWISE, 1, rule, vjp=vjp if grad else None,
                   differentiable=grad is not None, float_only=float_only,
                   impl=NUMPY_FUNCTIONS[name]))  # fmt: skip


def _s(b, v, like):
    return b.scalar(v, like.dtype)


_unary("neg", lambda b, x, y, g: b.neg(g), float_only=False)
_unary("exp", lambda b, x, y, g: b.mul(g, y))
_unary("log", lambda b, x, y, g: b.div(g, x))
_unary("log1p", lambda b, x, y, g: b.div(g, b.add(x, _s(b, 1, x))))
_unary("expm1", lambda b, x, y, g: b.mul(g, b.add(y, _s(b, 1, y))))
_unary("tanh", lambda b, x, y, g: b.mul(g, b.sub(_s(b, 1, y), b.mul(y, y))))
_unary("sqrt", lambda b, x, y, g: b.div(g, b.mul(y, _s(b, 2, y))))
_unary("rsqrt", lambda b, x, y, g: b.mul(g, b.mul(_s(b, -0.5, y), b.div(y, x))))
_unary("abs", lambda b, x, y, g: b.mul(g, b.sign(x)), float_only=False)
_unary("sign", float_only=False)
_unary("sin", lambda b, x, y, g: b.mul(g, b.cos(x)))
_unary("cos", lambda b, x, y, g: b.neg(b.mul(g, b.sin(x))))
_unary("sigmoid", lambda b, x, y, g: b.mul(g, b.mul(y, b.sub(_s(b, 1, y), y))))
_unary("reciprocal", lambda b, x, y, g: b.neg(b.mul(g, b.mul(y, y))))
_unary(
    "erf",
    lambda b, x, y, g: b.mul(g, b.mul(_s(b, 2 / math.sqrt(math.pi), x), b.exp(b.neg(b.mul(x, x))))),
)
register(OpDef("logical_not", Kind.ELEMENTWISE, 1, _rule(bool_only=True), differentiable=False,
               impl=np.logical_not))  # fmt: skip


def _binary(name, grad=None, **rule):
    """grad(b, x, y, out, g) -> (dx, dy) before un-broadcasting of scalar operands."""

    def vjp(b, node, cts):
        (x, y), (out,), (g,) = node.inputs, node.outputs, cts
        gx, gy = grad(b, x, y, out, g)
        return [gx and unbroadcast(b, gx, x), gy and unbroadcast(b, gy, y)]

    register(OpDef(name, Kind.ELEMENTWISE, 2, _rule(**rule), vjp=vjp if grad else None,
                   differentiable=grad is not None, impl=NUMPY_FUNCTIONS[name]))  # fmt: skip


def _pow_grad(b, x, y, out, g):
    # d/dx x**y = y * x**(y-1); d/dy x**y = x**y * log(x), defined as 0 where x <= 0
    # (log is undefined there; JAX yields NaN, we keep the exponent's gradient finite).
    zero = _s(b, 0, x)
    gx = b.mul(g, b.mul(y, b.pow(x, b.sub(y, _s(b, 1, y)))))
    positive = b.gt(x, zero)
    safe_x = b.where(positive, x, _s(b, 1, x))
    gy = b.mul(g, b.where(positive, b.mul(out, b.log(safe_x)), zero))
    return gx, gy


def _select_grad(strict):
    # maximum/minimum: the gradient goes to the winner; ties split it equally (as JAX does).
    def grad(b, x, y, out, g):
        half = _s(b, 0.5, g)
        share = b.add(b.cast(b.emit(strict, x, y), g.dtype), b.mul(half, b.cast(b.eq(x, y), g.dtype)))
        gx = b.mul(g, share)
        return gx, b.sub(g, gx)

    return grad


_binary("add", lambda b, x, y, out, g: (g, g))
_binary("sub", lambda b, x, y, out, g: (g, b.neg(g)), no_bool=True)
_binary("mul", lambda b, x, y, out, g: (b.mul(g, y), b.mul(g, x)))
_binary("div", lambda b, x, y, out, g: (b.div(g, y), b.neg(b.div(b.mul(g, out), y))))
_binary("pow", _pow_grad)
_binary("maximum", _select_grad("gt"))
_binary("minimum", _select_grad("lt"))
for _name in COMPARISONS:
    _binary(_name, result_dtype="bool")
for _name in LOGICAL:
    _binary(_name, bool_only=True)


def _where_vjp(b, node, cts):
    (c, x, y), (g,) = node.inputs, cts
    zero = b.scalar(0, g.dtype)
    return [None, unbroadcast(b, b.where(c, g, zero), x), unbroadcast(b, b.where(c, zero, g), y)]


def _cast_vjp(b, node, cts):
    (x,), (g,) = node.inputs, cts
    return [b.cast(g, x.dtype) if is_float(x.dtype) and is_float(g.dtype) else None]


register(OpDef("where", Kind.ELEMENTWISE, 3, _where_rule, vjp=_where_vjp, impl=np.where))
register(OpDef("cast", Kind.ELEMENTWISE, 1, _cast_rule, attrs={"dtype": REQUIRED}, vjp=_cast_vjp,
               attr_types={"dtype": ty.DTYPE},
               impl=lambda x, dtype: np.asarray(x).astype(to_numpy_dtype(dtype))))  # fmt: skip
