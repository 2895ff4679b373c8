"""Tracer: a stand-in for an array that records every operation on it into the graph."""

from __future__ import annotations

import dis
import numbers
import sys

import numpy as np

from bpir.errors import ShapeError, TraceError
from bpir.ir import Value
from bpir.location import user_location
from bpir.ops.layout import broadcast_shapes
from bpir.types import dtype_name, is_float, to_numpy_dtype

from . import context


class Tracer:
    """An abstract array inside a trace. Supports Python operators and NumPy's protocols.

    NumPy's mutation semantics: ``value`` is the array's current contents and assigning it is an
    in-place update that every alias sees; a view (basic indexing, ``.T``, a reshape that NumPy
    makes without copying) re-reads its base and writes back into it (see ``views``). ``weak``
    marks a Python scalar argument, which promotes as a Python scalar does (NEP 50, ``jax.jit``)."""

    __slots__ = ("_value", "trace", "weak", "_base", "_view", "_stamp", "_shadow")
    __array_priority__ = 1000
    _masked = False  # x[mask] (frontends.masks.Masked)

    def __init__(self, value: Value, trace: context.Trace, weak: bool = False):
        self._value = value
        self.trace = trace
        self.weak = weak
        self._base: Tracer | None = None  # the array this one is a view of
        self._view = None  # how this view reads from and writes back into its base
        self._stamp = 0  # a root: its write count; a view: the root's count when last read
        self._shadow = None  # a NumPy array with this array's layout: decides view or copy

    @property
    def value(self) -> Value:
        """The current contents (a view re-reads its base after anything wrote to the base)."""
        if self._base is None:
            return self._value
        stamp = self._root()._stamp
        if self._stamp != stamp:
            self._value = self._view.read(self.trace.builder, self._base.value)
            self._stamp = stamp
        return self._value

    @value.setter
    def value(self, new: Value) -> None:
        """Replace the contents in place: every alias and view of this array sees it."""
        if context.current() is not self.trace:
            raise TraceError(
                f"in-place update at {user_location()} of an array that belongs to an enclosing "
                "trace (a closure inside grad or custom_vjp): copy it first (x = x.copy())"
            )
        if new.type != self.value.type:
            raise TraceError(f"in-place update would change {self.value.type} to {new.type}")
        if self._base is None:
            self._stamp += 1
        else:
            self._base.value = self._view.write(self.trace.builder, self._base.value, new)
            self._stamp = self._root()._stamp
        self._value = new

    def _root(self) -> Tracer:
        t = self
        while t._base is not None:
            t = t._base
        return t

    # -- array attributes --------------------------------------------------------------------
    shape = property(lambda self: self.value.shape)
    ndim = property(lambda self: len(self.value.shape))
    size = property(lambda self: self.value.type.size)
    dtype = property(lambda self: to_numpy_dtype(self.value.dtype))

    @property
    def T(self) -> Tracer:  # noqa: N802 (NumPy's name)
        from .views import transpose

        return transpose(self)

    def __repr__(self) -> str:
        return f"Tracer({self.value.type}{', weak' if self.weak else ''})"

    def __len__(self) -> int:
        if not self.shape:
            raise TypeError("len() of a 0-d traced array")
        return self.shape[0]

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def _no_concrete(self, what: str, via: str = "float"):
        """Refuse a conversion to a concrete value, unless it is NumPy storing this value into
        an array that can safely become traced (``numpy_store``): then the placeholder."""
        frame = _numpy_store_frame()
        if frame is not None:
            from .numpy_store import adopt

            placeholder = adopt(self, frame, via)
            if placeholder is not None:
                return placeholder
            raise TraceError(
                f"writing a traced value {self.value.type} into a NumPy array at {user_location()}: "
                "a NumPy array cannot hold a traced value, and this one could not be made traced "
                "(it has an alias or a view, is not a local variable, or the index is not made of "
                "local ints and slices). Create the array traced instead: "
                "out = np.zeros(shape, like=x) (x any traced argument; also np.empty/np.ones/np.full), "
                "or np.zeros_like(x, shape=shape), then out[...] = value traces as a functional update; "
                "or collect the pieces in a list and np.stack them."
            )
        raise TraceError(
            f"{what} of a traced value {self.value.type} at {user_location()}: its value is "
            "unknown while tracing. Python control flow runs at trace time and cannot depend on "
            "data; use np.where / np.maximum instead."
        )

    def __bool__(self):
        return bool(self._no_concrete("bool()"))

    def __float__(self):
        return float(self._no_concrete("float()"))

    def __int__(self):
        return int(self._no_concrete("int()"))

    def __index__(self):
        return int(self._no_concrete("use as an index"))

    def item(self):
        self._no_concrete(".item()")

    def __array__(self, *args, **kwargs):
        return self._no_concrete(
            "conversion to a concrete NumPy array (note: a list or tuple of traced arrays, such as "
            "a list argument, which is a pytree of separate arrays as in JAX, is not an array: "
            "np.stack it)",
            via="array",
        )

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
        out = unary("neg", self)
        out.weak = self.weak
        return out

    def __pos__(self):
        out = wrap(lift(self))  # a new array, as NumPy's +x
        out.weak = self.weak
        return out

    def __abs__(self):
        out = unary("abs", self)
        out.weak = self.weak
        return out

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

    def __rxor__(self, o):
        return np.bitwise_xor(o, self)

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

    # in place: the update is seen through every alias and view (NumPy's same_kind casting)
    def __iadd__(self, o):
        return self._inplace("add", o)

    def __isub__(self, o):
        return self._inplace("sub", o)

    def __imul__(self, o):
        return self._inplace("mul", o)

    def __itruediv__(self, o):
        return self._inplace("div", o)

    def __ipow__(self, o):
        return self._assign_result(power(self, o))

    def __iand__(self, o):
        return self._inplace("logical_and", o)

    def __ior__(self, o):
        return self._inplace("logical_or", o)

    def _inplace(self, op: str, o) -> Tracer:
        return self._assign_result(binary(op, self, o))

    def _assign_result(self, r: Tracer) -> Tracer:
        if r.shape != self.shape:
            raise ShapeError(
                f"in-place update of {self.shape} with a result of shape {r.shape} at {user_location()}"
            )
        if not np.can_cast(r.dtype, self.dtype, "same_kind"):
            raise TraceError(
                f"in-place update at {user_location()}: cannot cast the {r.dtype} result to the "
                f"array's {self.dtype} (NumPy's same_kind rule); write x = x + ... instead"
            )
        self.value = active_trace().builder.cast(lift(r), self.value.dtype)
        return self

    # operators NumPy implements as ufuncs: dispatched through __array_ufunc__
    def __floordiv__(self, o):
        return np.floor_divide(self, o)

    def __rfloordiv__(self, o):
        return np.floor_divide(o, self)

    def __mod__(self, o):
        return np.remainder(self, o)

    def __rmod__(self, o):
        return np.remainder(o, self)

    def __xor__(self, o):
        return np.logical_xor(self, o) if self.value.dtype == "bool" else np.bitwise_xor(self, o)

    def __getitem__(self, key):
        from .indexing import getitem

        return getitem(self, key)

    def __setitem__(self, key, val):
        from .indexing import setitem

        self.value = setitem(self, key, val)

    # -- NumPy protocols ---------------------------------------------------------------------
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        from .numpy_api import apply_ufunc

        if any(getattr(i, "_masked", False) for i in inputs):
            from .masks import elementwise

            return elementwise(lambda *xs: apply_ufunc(ufunc, method, xs, kwargs), *inputs)
        if method == "at":
            from .indexing import ufunc_at

            return ufunc_at(ufunc, *inputs, **kwargs)

        return apply_ufunc(ufunc, method, inputs, kwargs)

    def __array_function__(self, func, types, args, kwargs):
        from .numpy_api import apply_function
        from .numpy_shape import FUNCTIONS

        if func in FUNCTIONS:  # views, padding, splitting, traced array creation (like=)
            return FUNCTIONS[func](*args, **kwargs)
        return apply_function(func, args, kwargs)

    # -- methods -----------------------------------------------------------------------------
    def __getattr__(self, name):
        from .numpy_api import METHODS
        from .views import METHODS as VIEW_METHODS

        if name in VIEW_METHODS:  # reshape/transpose/... give views, as in NumPy
            return lambda *a, **k: VIEW_METHODS[name](self, *a, **k)
        if name in METHODS:
            return lambda *a, **k: METHODS[name](self, *a, **k)
        raise AttributeError(f"traced arrays have no attribute {name!r}")


def _numpy_store_frame():
    """The user's frame when it is executing a subscript store (``out[i] = traced``) that
    NumPy's ``ndarray.__setitem__`` is carrying out: the conversion came from there."""
    from bpir.location import _OWN, _is_user_file

    frame = sys._getframe(2)
    while frame is not None and frame.f_code.co_filename.startswith(_OWN):
        frame = frame.f_back
    if frame is None or not _is_user_file(frame.f_code.co_filename):
        return None
    for ins in dis.get_instructions(frame.f_code):
        if ins.offset == frame.f_lasti:
            return frame if ins.opname in ("STORE_SUBSCR", "STORE_SLICE") else None
    return None


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
        if x._masked:
            from .masks import _refuse

            _refuse(made_at=x.made_at)
        v = context.value_in(trace, x.trace, x.value)
        return trace.builder.cast(v, dtype) if dtype else v
    b = trace.builder
    if isinstance(x, (np.ndarray, np.generic)):
        arr = np.asarray(x)
        return b.const(arr, dtype or dtype_name(arr.dtype))
    if isinstance(x, (bool, numbers.Number)):
        return b.const(x, dtype or dtype_name(np.asarray(x).dtype))
    raise TraceError(f"cannot use a {type(x).__name__} in a traced computation")


def is_weak(x) -> bool:
    """A Python scalar, or a traced one (a Python scalar argument): it takes the other
    operand's dtype (NEP 50 / jax.jit weak typing)."""
    if isinstance(x, Tracer):
        return x.weak
    return isinstance(x, (bool, numbers.Number)) and not isinstance(x, np.generic)


def _python_scalar(t: Tracer):
    """A Python scalar of the weak tracer's kind: what NumPy promotes it as (NEP 50)."""
    return {"b": False, "i": 0, "u": 0}.get(t.dtype.kind, 0.0)


def strong_dtype(x):
    """The operand's dtype for promotion: NumPy dtypes are strong, Python scalars weak (NEP 50)."""
    if isinstance(x, Tracer):
        return _python_scalar(x) if x.weak else x.dtype
    if isinstance(x, (np.ndarray, np.generic)):
        return x.dtype
    if isinstance(x, (bool, numbers.Number)):
        return type(x) if not isinstance(x, bool) else bool
    raise TraceError(f"cannot use a {type(x).__name__} in a traced computation")


def result_dtype(*xs) -> str:
    weak = [strong_dtype(x) if isinstance(x, Tracer) else x for x in xs if is_weak(x)]
    strong = [strong_dtype(x) for x in xs if not is_weak(x)]
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


def _masked_operand(*xs) -> bool:
    return any(isinstance(x, Tracer) and x._masked for x in xs)


def unary(op: str, x, dtype: str | None = None) -> Tracer:
    if _masked_operand(x):
        from .masks import elementwise

        return elementwise(lambda v: unary(op, v, dtype), x)
    (v,) = operands(x, dtype=dtype)
    return wrap(active_trace().builder.emit(op, v))


def binary(op: str, a, b, dtype: str | None = None) -> Tracer:
    if _masked_operand(a, b):
        from .masks import elementwise

        return elementwise(lambda p, q: binary(op, p, q, dtype), a, b)
    if op == "div" and dtype is None:
        dtype = result_dtype(a, b)
        if not is_float(dtype):
            dtype = "f64"  # true division of integers gives float64, as in NumPy
    try:
        broadcast_shapes(shape_of(a), shape_of(b))
    except ShapeError as e:
        loc = user_location()
        raise ShapeError(f"{op}: {e}" + (f" at {loc}" if loc else "")) from None
    x, y = operands(a, b, dtype=dtype)
    out = wrap(active_trace().builder.emit(op, x, y))
    out.weak = is_weak(a) and is_weak(b) and out.value.dtype != "bool"
    return out


def power(a, b) -> Tracer:
    """x ** 2 and x ** 0.5 become mul / sqrt (exact and cheaper); other powers use pow."""
    if _masked_operand(a, b):
        from .masks import elementwise

        return elementwise(power, a, b)
    if isinstance(b, numbers.Number) and isinstance(a, Tracer):
        if b == 2:
            return binary("mul", a, a)
        if b == 1:
            return wrap(lift(a))  # a new array, as NumPy's x ** 1
        if b == 0.5 and a.dtype.kind == "f":
            return unary("sqrt", a)
        if b == -1 and a.dtype.kind == "f":
            return unary("reciprocal", a)
    dtype = result_dtype(a, b)
    return binary("pow", a, b, dtype=dtype)
