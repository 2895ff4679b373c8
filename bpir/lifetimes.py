"""Buffer lifetimes, the one analysis behind every buffer-reuse decision: which values share a
buffer (a view lives in its source's), the step at which each buffer is last read, and first-fit
reuse of slots by buffers whose lifetimes do not overlap.

The memory plan (``passes.memory``: in-place writes, peak bytes), the Numba backend's workspace
and the CUDA driver's device slots all read it; it changes no graph."""

from __future__ import annotations

from collections.abc import Collection, Hashable, Iterable
from dataclasses import dataclass

from . import ops  # noqa: F401  (registers the op set: VIEW_OPS is read from it)
from .ir import Graph, Node, Value
from .registry import OPS

# ops whose result may be a strided view of their input, as the registry declares (``OpDef.view``)
VIEW_OPS = frozenset(name for name, op in OPS.items() if op.view)


def last_reads(reads: Iterable[Iterable[Hashable]]) -> dict[Hashable, int]:
    """buffer -> index of the last step reading it, given what each step reads, in order."""
    last: dict[Hashable, int] = {}
    for i, step in enumerate(reads):
        for b in step:
            last[b] = i
    return last


def buffer_ends(base: dict[Value, Value], last_use: dict[Value, int]) -> dict[Value, int]:
    """buffer -> the last node index at which any value living in it is read (-1: never)."""
    ends: dict[Value, int] = {}
    for v, b in base.items():
        ends[b] = max(ends.get(b, -1), last_use.get(v, -1))
    return ends


@dataclass
class Lifetimes:
    """Where each value of a graph lives and until when."""

    base: dict[Value, Value]  # value -> the value whose buffer holds it (itself unless a view)
    last_use: dict[Value, int]  # value -> last node index reading it (a graph output: len(nodes))
    end: dict[Value, int]  # buffer (a base value) -> last node index reading it or a view of it


def lifetimes(graph: Graph, read_through: Collection[Node] = ()) -> Lifetimes:
    """The lifetimes of ``graph``'s values, views aliasing the buffer of their first input, as
    do the ``read_through`` nodes (never materialised: their readers read their input)."""
    base: dict[Value, Value] = {v: v for v in graph.inputs}
    for node in graph.nodes:
        for v in node.outputs:
            base[v] = base[node.inputs[0]] if node.op in VIEW_OPS or node in read_through else v
    last_use = last_reads(node.inputs for node in graph.nodes)
    for v in graph.outputs:
        last_use[v] = len(graph.nodes)
    return Lifetimes(base, last_use, buffer_ends(base, last_use))


class Slots:
    """First-fit reuse: a buffer first written at step ``start`` and last read at step ``end``
    takes the first slot of its key (shape or size, and dtype) whose last buffer was last read
    before ``start``, else a new slot."""

    def __init__(self):
        self.keys: list[Hashable] = []  # slot -> key of the buffers it holds
        self._busy: list[int] = []  # slot -> last step at which its current buffer is read

    def take(self, key: Hashable, start: int, end: int) -> int:
        for k, (held, busy) in enumerate(zip(self.keys, self._busy)):
            if held == key and busy < start:
                self._busy[k] = end
                return k
        self.keys.append(key)
        self._busy.append(end)
        return len(self.keys) - 1
