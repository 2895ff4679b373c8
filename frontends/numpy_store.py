"""``out = np.zeros(...); out[i] = traced``: the NumPy array becomes a traced one.

A NumPy array cannot hold a traced value, and ``ndarray.__setitem__`` cannot be intercepted: it
asks the value for ``float()`` or ``__array__()``. From there the store is adopted when it is
safe: the user's line is a subscript store whose container is a plain local variable, the key is
made of locals, constants, tuples, slices and integer arithmetic (re-evaluated here, without side
effects), and that local holds the only reference to the array (no alias, no view). The local is
then rebound to a traced copy of the array with the store applied, and NumPy writes a
placeholder into the now unreachable array. Anything else is refused with a TraceError that says
what to write (``np.zeros(shape, like=x)``)."""

from __future__ import annotations

import ctypes
import dis
import operator
import sys

import numpy as np

from .tracer import Tracer, lift, wrap

_LOADS = {"LOAD_FAST", "LOAD_FAST_CHECK", "LOAD_DEREF", "LOAD_CONST", "LOAD_SMALL_INT"}
_BINARY = {"+": operator.add, "-": operator.sub, "*": operator.mul, "//": operator.floordiv}
# references to the array besides the frame's: the value stack, and (``__array__`` path) NumPy's
_OTHER_REFS = {"float": 1, "array": 2}


class _UnsupportedError(Exception):
    """The store is not one that can be adopted safely."""


def adopt(value: Tracer, frame, via: str):
    """Apply ``container[key] = value`` to a traced copy and rebind the local; the placeholder
    NumPy should store, or None when the store cannot be adopted safely."""
    if not (3, 11) <= sys.version_info[:2] <= (3, 12):
        return None  # reference counts and frame-local writes calibrated on CPython 3.11/3.12
    try:
        name, key = _decode(frame)
    except _UnsupportedError:
        return None
    arr = frame.f_locals.get(name)
    if not isinstance(arr, np.ndarray) or arr.dtype.kind not in "biuf":
        return None
    holders = sum(v is arr for v in frame.f_locals.values())
    # besides getrefcount's argument and ``arr``: the local and its f_locals entry, stack (NumPy)
    if sys.getrefcount(arr) - 2 > 2 * holders + _OTHER_REFS[via] or holders != 1:
        return None  # an alias or a view could still read the NumPy array
    traced = wrap(lift(arr))
    traced[key] = value
    if not _rebind(frame, name, traced):
        return None
    if via == "float":
        return 0
    return np.zeros(value.shape, arr.dtype)


def _rebind(frame, name: str, new) -> bool:
    frame.f_locals[name] = new
    ctypes.pythonapi.PyFrame_LocalsToFast(ctypes.py_object(frame), ctypes.c_int(0))
    return frame.f_locals.get(name) is new


def _instructions(code) -> list:
    """The code's instructions; superinstructions that load two locals count as two loads."""
    out = []
    for ins in dis.get_instructions(code):
        if ins.opname == "LOAD_FAST_LOAD_FAST":
            out += [("LOAD_FAST", n, ins.offset) for n in ins.argval]
        else:
            out.append((ins.opname, ins.argval if ins.opname != "BINARY_OP" else ins.argrepr, ins.offset))
    return out


def _decode(frame) -> tuple[str, object]:
    """The local name and key of the store the frame is executing."""
    instrs = _instructions(frame.f_code)
    k = max((i for i, ins in enumerate(instrs) if ins[2] == frame.f_lasti), default=None)
    if k is None or instrs[k][0] not in ("STORE_SUBSCR", "STORE_SLICE"):
        raise _UnsupportedError
    n_operands = 2 if instrs[k][0] == "STORE_SUBSCR" else 3
    segments, end = [], k
    for _ in range(n_operands):
        start = _segment_start(instrs, end)
        segments.insert(0, instrs[start:end])
        end = start
    container = segments[0]
    if len(container) != 1 or container[0][0] not in ("LOAD_FAST", "LOAD_FAST_CHECK"):
        raise _UnsupportedError
    parts = [_evaluate(seg, frame) for seg in segments[1:]]
    return container[0][1], parts[0] if n_operands == 2 else slice(*parts)


def _effect(ins) -> tuple[int, int]:
    """(pops, pushes) of the instructions a key may use."""
    op, arg, _ = ins
    if op in _LOADS:
        return 0, 1
    if op in ("BUILD_TUPLE", "BUILD_SLICE"):
        return arg, 1
    if op == "BINARY_OP" and arg in _BINARY:
        return 2, 1
    if op == "UNARY_NEGATIVE":
        return 1, 1
    raise _UnsupportedError


def _segment_start(instrs: list, end: int) -> int:
    need, i = 1, end
    while need > 0:
        i -= 1
        if i < 0:
            raise _UnsupportedError
        pops, pushes = _effect(instrs[i])
        need += pops - pushes
    if need != 0:
        raise _UnsupportedError
    return i


def _evaluate(segment: list, frame):
    stack: list = []
    for op, arg, _ in segment:
        if op in ("LOAD_CONST", "LOAD_SMALL_INT"):
            stack.append(arg)
        elif op in _LOADS:
            if arg not in frame.f_locals:
                raise _UnsupportedError
            stack.append(frame.f_locals[arg])
        elif op in ("BUILD_TUPLE", "BUILD_SLICE"):
            items = stack[len(stack) - arg :]
            del stack[len(stack) - arg :]
            stack.append(tuple(items) if op == "BUILD_TUPLE" else slice(*items))
        elif op == "UNARY_NEGATIVE":
            stack.append(-_int(stack.pop()))
        else:
            b, a = _int(stack.pop()), _int(stack.pop())
            stack.append(_BINARY[arg](a, b))
    (key,) = stack
    _check_key(key)
    return key


def _int(v) -> int:
    if not isinstance(v, (int, np.integer)) or isinstance(v, bool):
        raise _UnsupportedError  # only integer arithmetic is re-evaluated (it has no side effects)
    return int(v)


def _check_key(key) -> None:
    for k in key if isinstance(key, tuple) else (key,):
        if isinstance(k, slice):
            for part in (k.start, k.stop, k.step):
                if part is not None:
                    _int(part)
        elif k is not None and k is not Ellipsis and not isinstance(k, Tracer):
            _int(k)
