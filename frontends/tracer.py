"""Tracer: a stand-in for an array that records every operation on it into the graph."""

from __future__ import annotations

import numbers

import numpy as np

from bpir.errors import ShapeError, TraceError
from bpir.ir import Value
from bpir.location import user_location
from bpir.ops.layout import broadcast_shapes
from bpir.types import dtype_name, to_numpy_dtype

from . import context


class Tracer:
    """An abstract array inside a trace. Supports Python operators and NumPy's protocols."""

    __slots__ = ("value", "trace")
    __array_priority__ = 1000

    def __init__(self, value: Value, trace: context.Trace):
        self.value = value
        self.trace = trace

    # -- array attributes --------------------------------------------------------------------
    shape = property(lambda self: self.value.shape)
    ndim = property(lambda self: len(self.value.shape))
    size = property(lambda self: self.value.type.size)
    dtype = property(lambda self: to_numpy_dtype(self.value.dtype))
    T = property(lambda self: self.transpose())

    def __repr__(self) -> str:
        return f"Tracer({self.value.type})"

    def __len__(self) -> int:
        if not self.shape:
            raise TypeError("len() of a 0-d traced array")
        return self.shape[0]

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def _no_concrete(self, what: str):
        raise TraceError(
            f"{what} of a traced value {self.value.type} at {user_location()}: its value is "
            "unknown while tracing. Python control flow runs at trace time and cannot depend on "
            "data; use np.where / np.maximum instead."
        )

    def __bool__(self):
        self._no_concrete("bool()")

    def __float__(self):
        self._no_concrete("float()")

    def __int__(self):
        self._no_concrete("int()")

    def __index__(self):
        self._no_concrete("use as an index")

    def item(self):
        self._no_concrete(".item()")

    def __array__(self, *args, **kwargs):
        self._no_concrete("conversion to a concrete numpy array")

    __hash__ = object.__hash__

    # -- operators ---------------------------------------------------------------------------
    def __add__(self, o):
        return binary("add", self, o)

    def __radd__(self, o):
        return binary("add", o, self)

    def __sub__(self, o):
        return binary("sub", self, o)

    def __rsub__(self, o):
        return binary("sub", o, self)

    def __mul__(self, o):
        return binary("mul", self, o)

    def __rmul__(self, o):
        return binary("mul", o, self)

    def __truediv__(self, o):
        return binary("div", self, o)

    def __rtruediv__(self, o):
        return binary("div", o, self)

    def __pow__(self, o):
        return power(self, o)

    def __rpow__(self, o):
        return power(o, self)

    def __matmul__(self, o):
        from .numpy_api import matmul

        return matmul(self, o)

    def __rmatmul__(self, o):
        from .numpy_api import matmul

        return matmul(o, self)

    def __neg__(self):
        return unary("neg", self)

    def __pos__(self):
        return self

    def __abs__(self):
        return unary("abs", self)

    def __invert__(self):
        return np.invert(self)

    def __and__(self, o):
        return np.bitwise_and(self, o)

    def __or__(self, o):
        return np.bitwise_or(self, o)

    # -- operators routed through their NumPy ufuncs (numpy_api maps them to ops) ------------
    def __rand__(self, o):
        return np.bitwise_and(o, self)

    def __ror__(self, o):
        return np.bitwise_or(o, self)

    def __xor__(self, o):
        return np.bitwise_xor(self, o)

    def __rxor__(self, o):
        return np.bitwise_xor(o, self)

    def __floordiv__(self, o):
        return np.floor_divide(self, o)

    def __rfloordiv__(self, o):
        return np.floor_divide(o, self)

    def __mod__(self, o):
        return np.remainder(self, o)

    def __rmod__(self, o):
        return np.remainder(o, self)

    def __divmod__(self, o):
        return np.divmod(self, o)

    def __lshift__(self, o):
        return np.left_shift(self, o)

    def __rshift__(self, o):
        return np.right_shift(self, o)

    def __gt__(self, o):
        return binary("gt", self, o)

    def __ge__(self, o):
        return binary("ge", self, o)

    def __lt__(self, o):
        return binary("lt", self, o)

    def __le__(self, o):
        return binary("le", self, o)

    def __eq__(self, o):  # noqa: D105 (elementwise, as in NumPy)
        return binary("eq", self, o)

    def __ne__(self, o):
        return binary("ne", self, o)

    def __getitem__(self, key):
        from .indexing import getitem

        return getitem(self, key)

    def __setitem__(self, key, val):
        from .indexing import setitem

        self.value = setitem(self, key, val).value

    # -- NumPy protocols ---------------------------------------------------------------------
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        from .numpy_api import apply_ufunc

        return apply_ufunc(ufunc, method, inputs, kwargs)

    def __array_function__(self, func, types, args, kwargs):
        from .numpy_api import apply_function

        return apply_function(func, args, kwargs)

    # -- methods -----------------------------------------------------------------------------
    def __getattr__(self, name):
        from .numpy_api import METHODS

        if name in METHODS:
            return lambda *a, **k: METHODS[name](self, *a, **k)
        raise AttributeError(f"traced arrays have no attribute {name!r}")


# -- lifting Python values into the current trace -----------------------------------------------


def active_trace(*operands) -> context.Trace:
    trace = context.current()
    if trace is None:
        raise TraceError("a traced value was used outside of its trace")
    return trace


def wrap(value: Value) -> Tracer:
    return Tracer(value, active_trace())


def lift(x, dtype: str | None = None) -> Value:
    """A value of the current trace for ``x``: a tracer (perhaps captured from an outer trace),
    a NumPy array or a Python scalar (given ``dtype``, else NumPy's default)."""
    trace = active_trace()
    if isinstance(x, Tracer):
        v = context.value_in(trace, x.trace, x.value)
        return trace.builder.cast(v, dtype) if dtype else v
    b = trace.builder
    if isinstance(x, (np.ndarray, np.generic)):
        arr = np.asarray(x)
        return b.const(arr, dtype or dtype_name(arr.dtype))
    if isinstance(x, (bool, numbers.Number)):
        return b.const(x, dtype or dtype_name(np.asarray(x).dtype))
    raise TraceError(f"cannot use a {type(x).__name__} in a traced computation")


def strong_dtype(x):
    """The operand's dtype for promotion: NumPy dtypes are strong, Python scalars weak (NEP 50)."""
    if isinstance(x, Tracer):
        return x.dtype
    if isinstance(x, (np.ndarray, np.generic)):
        return x.dtype
    if isinstance(x, (bool, numbers.Number)):
        return type(x) if not isinstance(x, bool) else bool
    raise TraceError(f"cannot use a {type(x).__name__} in a traced computation")


def result_dtype(*xs) -> str:
    weak = [x for x in xs if not isinstance(x, (Tracer, np.ndarray, np.generic))]
    strong = [strong_dtype(x) for x in xs if isinstance(x, (Tracer, np.ndarray, np.generic))]
    return dtype_name(np.result_type(*strong, *weak))


def shape_of(x) -> tuple[int, ...]:
    return tuple(x.shape) if isinstance(x, (Tracer, np.ndarray, np.generic)) else ()


def operands(*xs, dtype: str | None = None) -> list[Value]:
    """Lift operands to one dtype and one shape (NumPy broadcasting; scalars stay rank-0)."""
    dtype = dtype or result_dtype(*xs)
    shape = broadcast_shapes(*(shape_of(x) for x in xs))
    b = active_trace().builder
    vals = [lift(x, dtype) for x in xs]
    return [v if v.shape in ((), shape) else b.broadcast_to(v, shape) for v in vals]


def unary(op: str, x, dtype: str | None = None) -> Tracer:
    (v,) = operands(x, dtype=dtype)
    return wrap(active_trace().builder.emit(op, v))


def binary(op: str, a, b, dtype: str | None = None) -> Tracer:
    if op == "div" and dtype is None:
        dtype = result_dtype(a, b)
        if not dtype.startswith("f"):
            dtype = "f64"  # true division of integers gives float64, as in NumPy
    try:
        broadcast_shapes(shape_of(a), shape_of(b))
    except ShapeError as e:
        loc = user_location()
        raise ShapeError(f"{op}: {e}" + (f" at {loc}" if loc else "")) from None
    x, y = operands(a, b, dtype=dtype)
    return wrap(active_trace().builder.emit(op, x, y))


def power(a, b) -> Tracer:
    """x ** 2 and x ** 0.5 become mul / sqrt (exact and cheaper); other powers use pow."""
    if isinstance(b, numbers.Number) and isinstance(a, Tracer):
        if b == 2:
            return binary("mul", a, a)
        if b == 1:
            return a
        if b == 0.5 and a.dtype.kind == "f":
            return unary("sqrt", a)
        if b == -1 and a.dtype.kind == "f":
            return unary("reciprocal", a)
    dtype = result_dtype(a, b)
    return binary("pow", a, b, dtype=dtype)
