"""NumPy's API on tracers: ufuncs (``__array_ufunc__``), functions (``__array_function__``)
and array methods, each mapped onto bpir ops. The handlers live in ``np_reductions``,
``np_shapes`` and ``np_linalg``; every keyword a handler does not implement is refused by
name (a handler has no ``**kwargs`` catch-all)."""

from __future__ import annotations

import numpy as np

from bpir.errors import ShapeError, TraceError
from bpir.registry import get_op
from bpir.types import TensorType, dtype_name, is_float

from . import np_linalg as la
from . import np_reductions as red
from . import np_shapes as sh
from .np_common import builder, fail, float_dtype
from .tracer import Tracer, active_trace, binary, lift, power, result_dtype, shape_of, unary, wrap

matmul = la.matmul  # the @ operator (tracer.py)

# ufunc -> op; float-only ops (OpDef.float_only) compute in floating point (integers become
# float64, as in NumPy)
UNARY_UFUNCS = {
    np.negative: "neg", np.exp: "exp", np.log: "log", np.log1p: "log1p", np.expm1: "expm1",
    np.tanh: "tanh", np.sqrt: "sqrt", np.absolute: "abs", np.fabs: "abs", np.sign: "sign",
    np.sin: "sin", np.cos: "cos", np.logical_not: "logical_not", np.tan: "tan",
    np.arcsin: "arcsin", np.arccos: "arccos", np.arctan: "arctan", np.sinh: "sinh",
    np.cosh: "cosh", np.arcsinh: "arcsinh", np.arccosh: "arccosh", np.arctanh: "arctanh",
    np.log2: "log2", np.log10: "log10",
}  # fmt: skip
BINARY_UFUNCS = {
    np.add: "add", np.subtract: "sub", np.multiply: "mul", np.true_divide: "div",
    np.maximum: "maximum", np.minimum: "minimum", np.greater: "gt", np.greater_equal: "ge",
    np.less: "lt", np.less_equal: "le", np.equal: "eq", np.not_equal: "ne",
    np.logical_and: "logical_and", np.logical_or: "logical_or", np.logical_xor: "logical_xor",
    np.floor_divide: "floor_divide", np.remainder: "remainder", np.left_shift: "left_shift",
    np.right_shift: "right_shift",
}  # fmt: skip
FLOAT_BINARY = {np.arctan2: "atan2", np.hypot: "hypot", np.logaddexp: "logaddexp",
                np.copysign: "copysign", np.nextafter: "nextafter"}  # fmt: skip
BITWISE = {np.bitwise_and: ("bitwise_and", "logical_and"), np.bitwise_or: ("bitwise_or", "logical_or"),
           np.bitwise_xor: ("bitwise_xor", "logical_xor")}  # fmt: skip
ROUNDING = {np.floor: "floor", np.ceil: "ceil", np.trunc: "trunc", np.rint: "rint"}
CLASSIFY = {np.isnan: ("isnan", False), np.isinf: ("isinf", False), np.isfinite: ("isfinite", True),
            np.signbit: ("signbit", None)}  # fmt: skip


def _const_like(x, value, dtype: str) -> Tracer:
    return wrap(builder().full(TensorType(shape_of(x), dtype), value))


def _rounding(op: str, x) -> Tracer:
    dt = result_dtype(x)
    if dt == "bool":
        fail(f"np.{op} of a bool array is not supported on traced values")
    if not is_float(dt):  # integers are already whole (rint alone returns float64)
        return wrap(lift(x, "f64")) if op == "rint" else wrap(lift(x))
    return unary(op, x)


def _classify(op: str, int_value, x) -> Tracer:
    if is_float(result_dtype(x)):
        return unary(op, x)
    if int_value is None:  # signbit of an integer
        return binary("lt", x, 0)
    return _const_like(x, int_value, "bool")


def _reciprocal(x) -> Tracer:
    dt = result_dtype(x)
    if is_float(dt):
        return unary("reciprocal", x)
    if dt == "bool":
        fail("np.reciprocal of a bool array is not supported on traced values")
    # NumPy's integer reciprocal truncates: 1 and -1 are their own, 0 gives the minimum, else 0
    b = builder()
    v = lift(x)
    zero = b.scalar(0, v.dtype)
    unit = b.eq(b.abs(v), b.scalar(1, v.dtype))
    low = b.scalar(np.iinfo(np.dtype(TensorType((), v.dtype).np_dtype)).min, v.dtype)
    return wrap(
        b.where(unit, v, b.where(b.eq(v, zero), b.broadcast_to(low, v.shape), b.broadcast_to(zero, v.shape)))
    )


def _bitwise(ops, a, b_):
    dt = result_dtype(a, b_)
    return binary(ops[1] if dt == "bool" else ops[0], a, b_)


def _invert(x):
    return unary("logical_not" if result_dtype(x) == "bool" else "bitwise_invert", x)


def _call_ufunc(ufunc, inputs, dtype, axis=-1):
    if ufunc in UNARY_UFUNCS:
        op = UNARY_UFUNCS[ufunc]
        (x,) = inputs
        return unary(op, x, dtype=dtype or (float_dtype(x) if get_op(op).float_only else None))
    if ufunc in BINARY_UFUNCS:
        return binary(BINARY_UFUNCS[ufunc], *inputs, dtype=dtype)
    if ufunc in FLOAT_BINARY:
        return binary(FLOAT_BINARY[ufunc], *inputs, dtype=dtype or float_dtype(*inputs))
    if ufunc in BITWISE:
        return _bitwise(BITWISE[ufunc], *inputs)
    if ufunc in ROUNDING:
        return _rounding(ROUNDING[ufunc], *inputs)
    if ufunc in CLASSIFY:
        return _classify(*CLASSIFY[ufunc], *inputs)
    if ufunc is np.invert:
        return _invert(*inputs)
    if ufunc is np.reciprocal:
        return _reciprocal(*inputs)
    if ufunc is np.power:
        return power(*inputs)
    if ufunc is np.square:
        return binary("mul", inputs[0], inputs[0])
    if ufunc in (np.positive, np.conjugate):
        return wrap(lift(inputs[0]))
    if ufunc in (np.deg2rad, np.rad2deg):
        factor = np.pi / 180 if ufunc is np.deg2rad else 180 / np.pi
        return binary("mul", inputs[0], factor, dtype=float_dtype(inputs[0]))
    if ufunc is np.exp2:
        return binary("pow", 2.0, inputs[0], dtype=float_dtype(inputs[0]))
    if ufunc is np.divmod:
        return binary("floor_divide", *inputs), binary("remainder", *inputs)
    if ufunc is np.matmul:
        return la.matmul(*inputs)
    if ufunc is getattr(np, "vecdot", None):
        return la.vecdot(*inputs, axis=axis)
    fail(f"np.{ufunc.__name__} is not supported on traced values")


def apply_ufunc(ufunc, method, inputs, kwargs):
    if method != "__call__":
        fail(f"np.{ufunc.__name__}.{method} is not supported on traced values")
    out = kwargs.pop("out", None)
    dtype = kwargs.pop("dtype", None)
    if kwargs.get("casting", "same_kind") == "same_kind":
        kwargs.pop("casting", None)
    if kwargs.get("where", True) is True:
        kwargs.pop("where", None)
    axis = kwargs.pop("axis", -1) if ufunc is getattr(np, "vecdot", None) else -1
    if kwargs:
        fail(
            f"np.{ufunc.__name__}: the keyword(s) {', '.join(sorted(kwargs))}= are not supported on traced values"
        )
    result = _call_ufunc(ufunc, inputs, dtype_name(dtype) if dtype is not None else None, axis)
    if dtype is not None and not isinstance(result, tuple):
        result = wrap(active_trace().builder.cast(lift(result), dtype_name(dtype)))
    if out is not None:
        (target,) = out
        if not isinstance(target, Tracer):
            raise TraceError("out= must be a traced array: NumPy arrays cannot hold traced results")
        if target.shape != result.shape:
            raise ShapeError(f"out= has shape {target.shape}, result has {result.shape}")
        target.value = active_trace().builder.cast(lift(result), target.value.dtype)
        return target
    return result


# -- ufunc-like functions ----------------------------------------------------------------------


def around(a, decimals=0, out=None):
    """Round half to even; with decimals, NumPy's own scale-rint-unscale."""
    red.refuse("round", out=out)
    dt = result_dtype(a)
    if not is_float(dt):
        if decimals >= 0:
            return wrap(lift(a))
        fail("np.round of integers with negative decimals is not supported on traced values")
    if decimals == 0:
        return unary("rint", a)
    scale = 10.0**decimals
    return binary("div", unary("rint", binary("mul", a, scale)), scale)


def isclose(a, b, rtol=1e-05, atol=1e-08, equal_nan=False):
    if equal_nan:
        fail("np.isclose: equal_nan=True is not supported on traced values")
    dt = float_dtype(a, b)
    diff = unary("abs", binary("sub", a, b, dtype=dt))
    return binary("le", diff, binary("add", atol, binary("mul", rtol, unary("abs", b, dtype=dt))))


def isin(element, test_elements, assume_unique=False, invert=False, *, kind=None):
    """Membership by broadcast comparison with every test element (static count of them)."""
    b = builder()
    element, test_elements = (x if isinstance(x, Tracer) else np.asarray(x) for x in (element, test_elements))
    dt = result_dtype(element, test_elements)
    e, t = lift(element, dt), lift(test_elements, dt)
    n = t.type.size
    ee = b.broadcast_to(b.reshape(e, (*e.shape, 1)), (*e.shape, n))
    tt = b.broadcast_to(b.reshape(t, (1,) * e.type.ndim + (n,)), (*e.shape, n))
    hit = b.gt(b.reduce_sum(b.cast(b.eq(ee, tt), "i64"), axes=(e.type.ndim,)), b.scalar(0, "i64"))
    return wrap(b.logical_not(hit) if invert else hit)


def real(val):
    if not result_dtype(val).startswith(("f", "i", "b")):
        fail("np.real: complex values are not supported")
    return wrap(lift(val))


def imag(val):
    return sh.zeros_like(val)


def average(a, axis=None, weights=None, returned=False, *, keepdims=False):
    """The mean, or with weights (1-D along one axis, or a's shape) sum(a * w) / sum(w)."""
    if weights is None:
        avg, total = red.mean(a, axis=axis, keepdims=keepdims), None
    else:
        w = weights
        if len(shape_of(w)) == 1 and len(shape_of(a)) > 1:
            if axis is None or isinstance(axis, (tuple, list)):
                fail("np.average: 1-D weights need a single axis=")
            nd = len(shape_of(a))
            w = sh.reshape(w, tuple(-1 if i == axis % nd else 1 for i in range(nd)))
        w = sh.broadcast_to(w, shape_of(a))
        total = red.reduce_sum(w, axis=axis, keepdims=keepdims, dtype=float_dtype(a, w))
        avg = red.reduce_sum(binary("mul", a, w), axis=axis, keepdims=keepdims) / total
    if returned:
        return avg, total if total is not None else sh.full_like(
            avg, red._count(a, axis, keepdims, None, "f64")
        )
    return avg


def _data_dependent(name: str, advice: str):
    def refuse(*args, **kwargs):
        fail(f"np.{name} of a traced value has a data-dependent shape; {advice}")

    return refuse


FUNCTIONS = {
    # reductions and scans
    np.sum: red.reduce_sum, np.mean: red.mean, np.max: red.amax, np.amax: red.amax, np.min: red.amin,
    np.amin: red.amin, np.prod: red.prod, np.var: red.var, np.std: red.std, np.argmax: red.argmax,
    np.argmin: red.argmin, np.all: red.all_, np.any: red.any_, np.count_nonzero: red.count_nonzero,
    np.cumsum: red.cumsum, np.cumprod: red.cumprod, np.diff: red.diff,
    # shapes and layout
    np.reshape: sh.reshape, np.ravel: sh.ravel, np.transpose: sh.transpose,
    np.swapaxes: sh.swapaxes, np.moveaxis: sh.moveaxis, np.expand_dims: sh.expand_dims,
    np.squeeze: sh.squeeze, np.broadcast_to: sh.broadcast_to, np.broadcast_arrays: sh.broadcast_arrays,
    np.concatenate: sh.concatenate, np.stack: sh.stack, np.hstack: sh.hstack, np.vstack: sh.vstack,
    np.atleast_1d: sh.atleast_1d, np.atleast_2d: sh.atleast_2d, np.atleast_3d: sh.atleast_3d,
    np.flip: sh.flip, np.fliplr: sh.fliplr, np.flipud: sh.flipud, np.roll: sh.roll, np.repeat: sh.repeat,
    np.tile: sh.tile, np.take: sh.take, np.take_along_axis: sh.take_along_axis, np.sort: sh.sort,
    np.argsort: sh.argsort, np.searchsorted: sh.searchsorted, np.tril: sh.tril, np.triu: sh.triu,
    np.diagonal: sh.diagonal, np.diag: sh.diag, np.meshgrid: sh.meshgrid, np.where: sh.where,
    np.clip: sh.clip, np.full_like: sh.full_like, np.zeros_like: sh.zeros_like,
    np.ones_like: sh.ones_like, np.empty_like: sh.zeros_like, np.copy: sh.copy,
    np.round: around, np.around: around, np.isclose: isclose, np.isin: isin, np.real: real, np.imag: imag,
    np.average: average,
    np.shape: lambda a: shape_of(a), np.ndim: lambda a: len(shape_of(a)),
    np.size: lambda a, axis=None: int(np.prod(shape_of(a))) if axis is None else shape_of(a)[axis],
    np.nonzero: _data_dependent("nonzero", "use np.where(cond, x, y) or a mask product"),
    np.argwhere: _data_dependent("argwhere", "use np.where(cond, x, y) or a mask product"),
    np.flatnonzero: _data_dependent("flatnonzero", "use np.where(cond, x, y) or a mask product"),
    np.unique: _data_dependent("unique", "compute it outside the traced function"),
    # products
    np.dot: la.dot, np.vdot: la.vdot, np.inner: la.inner, np.outer: la.outer,
    np.tensordot: la.tensordot, np.einsum: la.einsum, np.trace: la.trace, np.cross: la.cross,
    # np.linalg
    np.linalg.inv: la.inv, np.linalg.solve: la.solve, np.linalg.det: la.det,
    np.linalg.slogdet: la.slogdet, np.linalg.cholesky: la.cholesky, np.linalg.qr: la.qr,
    np.linalg.eigh: la.eigh, np.linalg.eigvalsh: la.eigvalsh, np.linalg.svd: la.svd,
    np.linalg.norm: la.norm, np.linalg.matrix_power: la.matrix_power,
    np.linalg.matrix_rank: la.matrix_rank, np.linalg.pinv: la.pinv,
}  # fmt: skip
# NumPy 2.x names (the array API standard's spellings)
for _name, _fn in {
    "cumulative_sum": red.cumulative_sum, "cumulative_prod": red.cumulative_prod,
    "unstack": sh.unstack, "matrix_transpose": sh.matrix_transpose, "astype": sh.astype,
    "unique_all": _data_dependent("unique_all", "compute it outside the traced function"),
    "unique_counts": _data_dependent("unique_counts", "compute it outside the traced function"),
    "unique_inverse": _data_dependent("unique_inverse", "compute it outside the traced function"),
    "unique_values": _data_dependent("unique_values", "compute it outside the traced function"),
}.items():  # fmt: skip
    if hasattr(np, _name):
        FUNCTIONS[getattr(np, _name)] = _fn
for _name, _fn in {
    "matmul": la.matmul, "matrix_transpose": sh.matrix_transpose, "vecdot": la.vecdot,
    "tensordot": la.linalg_tensordot, "outer": la.linalg_outer, "trace": la.linalg_trace,
    "diagonal": sh.linalg_diagonal, "cross": la.linalg_cross, "svdvals": la.svdvals,
    "vector_norm": la.vector_norm, "matrix_norm": la.matrix_norm,
}.items():  # fmt: skip
    if hasattr(np.linalg, _name):
        FUNCTIONS[getattr(np.linalg, _name)] = _fn


def function_name(func) -> str:
    """``np.NAME`` or ``np.linalg.NAME``: how the user wrote the function."""
    module = getattr(func, "__module__", "") or ""
    return ("np.linalg." if module.endswith("linalg") else "np.") + func.__name__


def _call(name: str, handler, args, kwargs):
    """Call a handler; a keyword it does not take is refused as a TraceError naming it."""
    try:
        return handler(*args, **kwargs)
    except TypeError as e:
        if "unexpected keyword argument" in str(e):
            keyword = str(e).rsplit(" ", 1)[-1].strip("'")
            fail(f"{name}: the keyword {keyword}= is not supported on traced values")
        raise


def apply_function(func, args, kwargs):
    handler = FUNCTIONS.get(func)
    if handler is None:
        fail(f"{function_name(func)} is not supported on traced values")
    return _call(function_name(func), handler, args, kwargs)


def _in_place(name: str, advice: str):
    def refuse(x, *args, **kwargs):
        fail(f"ndarray.{name}() of a traced value is not supported; {advice}")

    return refuse


def _method(name: str, fn):
    return lambda *args, **kwargs: _call(f"ndarray.{name}", fn, args, kwargs)


_METHODS = {
    "sum": red.reduce_sum, "mean": red.mean, "max": red.amax, "min": red.amin, "prod": red.prod,
    "var": red.var, "std": red.std, "argmax": red.argmax, "argmin": red.argmin, "all": red.all_,
    "any": red.any_, "cumsum": red.cumsum, "cumprod": red.cumprod, "reshape": sh.method_reshape,
    "transpose": sh.method_transpose, "swapaxes": sh.swapaxes, "squeeze": sh.squeeze,
    "astype": sh.method_astype, "copy": lambda x, order="C": sh.copy(x), "clip": sh.clip,
    "dot": la.dot, "flatten": lambda x, order="C": sh.ravel(x, order), "ravel": sh.ravel,
    "repeat": sh.repeat, "take": sh.take, "argsort": sh.argsort, "diagonal": sh.diagonal, "round": around,
    "sort": _in_place("sort", "x = np.sort(x, axis)"), "tolist": _in_place("tolist", "return the array itself"), "nonzero": FUNCTIONS[np.nonzero], "searchsorted": sh.searchsorted,
}  # fmt: skip
METHODS = {name: _method(name, fn) for name, fn in _METHODS.items()}
