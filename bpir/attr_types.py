"""Declared attribute types: what each op attribute may hold, checked wherever attributes enter
the IR (builder, parser, verifier), so that text or bytes on disk can never put anything but
these plain values into a graph (and from there into generated source)."""

from __future__ import annotations

import enum
import re
from typing import Any

import numpy as np

from . import types

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
_NUMPY_DTYPES = frozenset(types.to_numpy_dtype(d) for d in types.DTYPES)


class AttrType:
    """An attribute's type: ``check(value)`` returns the value (normalised) or raises TypeError."""

    name = "value"

    def check(self, value: Any) -> Any:
        raise NotImplementedError

    def fail(self, value: Any) -> TypeError:
        text = repr(value)
        if len(text) > 80:
            text = text[:77] + "..."
        return TypeError(f"expected {self.name}, got {type(value).__name__} {text}")

    def __repr__(self) -> str:
        return self.name


class Bool(AttrType):
    """True or False (not 0/1, not a string)."""

    name = "bool"

    def check(self, value):
        if isinstance(value, (bool, np.bool_)):
            return bool(value)
        raise self.fail(value)


class Int(AttrType):
    """An integer in int64's range, at least ``lo`` when given (bools refused)."""

    def __init__(self, lo: int | None = None):
        self.lo = INT64_MIN if lo is None else lo
        self.name = "int" if lo is None else f"int>={lo}"

    def check(self, value):
        if type(value) is not int:  # bool is not int here; NumPy integers are widened
            if not isinstance(value, np.integer):
                raise self.fail(value)
            value = int(value)
        if not self.lo <= value <= INT64_MAX:
            raise self.fail(value)
        return value


class Float(AttrType):
    """A float (inf and nan included); an integer is widened to float."""

    name = "float"

    def check(self, value):
        if isinstance(value, (bool, np.bool_)) or not isinstance(
            value, (int, float, np.integer, np.floating)
        ):
            raise self.fail(value)
        return float(value)


class OneOf(AttrType):
    """One string from a fixed set."""

    def __init__(self, *choices: str):
        self.choices = choices
        self.name = "one of " + "|".join(repr(c) for c in choices)

    def check(self, value):
        if type(value) is str and value in self.choices:
            return value
        raise self.fail(value)


class EnumOf(AttrType):
    """One member of a string-valued enum (``ir.StrFlag``); its plain string value is read as it."""

    def __init__(self, flags: type[enum.Enum]):
        self.flags = flags
        self.name = "one of " + "|".join(repr(f.value) for f in flags)

    def check(self, value):
        if isinstance(value, self.flags):
            return value
        if type(value) is str:
            try:
                return self.flags(value)
            except ValueError:
                pass
        raise self.fail(value)


AXIS_NAMES = re.compile(r"(?:[A-Za-z_][A-Za-z0-9_]*(?:,[A-Za-z_][A-Za-z0-9_]*)*)?")


class AxisNamesSpec(AttrType):
    """A sharding spec: a tuple with, per dimension, "" or mesh axis names joined by ","."""

    name = "a tuple of '' or comma-joined mesh axis names"

    def check(self, value):
        if type(value) is tuple and all(type(e) is str and AXIS_NAMES.fullmatch(e) for e in value):
            return value
        raise self.fail(value)


class DType(AttrType):
    """A dtype name of the IR (``f32``, ...); aliases such as ``float32`` normalise to it."""

    name = "dtype name"

    def check(self, value):
        if isinstance(value, str) and (value in types.DTYPES or not value.replace("_", "").isalnum()):
            if value in types.DTYPES:
                return value
            raise self.fail(value)  # not a name: never handed to NumPy's dtype-string parser
        try:
            name = types.dtype_name(value)
        except (TypeError, ValueError):
            raise self.fail(value) from None
        if name not in types.DTYPES:
            raise self.fail(value)
        return name


class Ints(AttrType):
    """A tuple of integers (each at least ``lo``), of ``length`` items when given."""

    def __init__(self, length: int | None = None, lo: int | None = None):
        self.length, self.item = length, Int(lo)
        self.name = f"tuple[{self.item.name}" + (f" x {length}]" if length is not None else ", ...]")

    def check(self, value):
        if not isinstance(value, (tuple, list)) or (self.length is not None and len(value) != self.length):
            raise self.fail(value)
        if type(value) is tuple and all(type(v) is int for v in value):  # the common case
            if value and not (self.item.lo <= min(value) and max(value) <= INT64_MAX):
                raise self.fail(value)
            return value
        try:
            return tuple(self.item.check(v) for v in value)
        except TypeError:
            raise self.fail(value) from None


class Array(AttrType):
    """A NumPy array of one of the IR's dtypes (a constant's value)."""

    name = "ndarray"

    def check(self, value):
        if not isinstance(value, np.ndarray) or value.dtype not in _NUMPY_DTYPES:
            raise self.fail(value)
        return value


class Region(AttrType):
    """A nested graph (a fused group's scalar region, a custom VJP's fwd/bwd)."""

    name = "region graph"

    def check(self, value):
        from .ir import Graph

        if not isinstance(value, Graph):
            raise self.fail(value)
        return value


class Plain(AttrType):
    """What an attribute without a declared type may hold: bool, int, float, a dtype name, or
    tuples of these (nested at most ``MAX_DEPTH``): exactly what the literal printer accepts."""

    name = "bool, int, float, dtype name or a tuple of these"
    MAX_DEPTH = 4

    def check(self, value, depth: int = 0):
        if isinstance(value, (bool, np.bool_)):
            return bool(value)
        if isinstance(value, (int, np.integer)):
            return INT.check(value)
        if isinstance(value, (float, np.floating)):
            return float(value)
        if type(value) is str and value in types.DTYPES:
            return value
        if isinstance(value, (tuple, list)) and depth < self.MAX_DEPTH:
            return tuple(self.check(v, depth + 1) for v in value)
        error = self.fail(value)
        raise TypeError(f"{error} (no declared type: give the op's OpDef attr_types=)")


BOOL = Bool()
INT = Int()
NONNEG = Int(0)
POSITIVE = Int(1)
FLOAT = Float()
DTYPE = DType()
INTS = Ints()
SHAPE = Ints(lo=0)
AXES = Ints(lo=0)
NONNEG_PAIR = Ints(2, lo=0)
POSITIVE_PAIR = Ints(2, lo=1)
ARRAY = Array()
REGION = Region()
PLAIN = Plain()
SPEC = AxisNamesSpec()
