"""The stack of graphs being traced, and how values from outside reach the innermost one."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

from bpir.builder import Builder
from bpir.ir import Value


@dataclass(eq=False)
class Trace:
    """A graph under construction plus the outer values it captured as extra inputs."""

    builder: Builder
    parent: Trace | None
    captured: dict[Value, Value] = field(default_factory=dict)  # outer value -> own input
    captured_from: list[Value] = field(default_factory=list)  # outer values, in input order


_stack: list[Trace] = []


def current() -> Trace | None:
    return _stack[-1] if _stack else None


@contextlib.contextmanager
def tracing(name: str):
    trace = Trace(Builder(name), current())
    _stack.append(trace)
    try:
        yield trace
    finally:
        _stack.pop()


def value_in(trace: Trace, owner: Trace, value: Value) -> Value:
    """``value`` (owned by ``owner``, an enclosing trace) as a value of ``trace``: a closure
    over an outer value becomes an extra input of every trace in between."""
    if owner is trace:
        return value
    if trace.parent is None:
        raise RuntimeError("a traced value escaped the function that produced it")
    outer = value_in(trace.parent, owner, value)
    if outer not in trace.captured:
        trace.captured[outer] = trace.builder.input(outer.type, f"captured{len(trace.captured)}")
        trace.captured_from.append(outer)
    return trace.captured[outer]
