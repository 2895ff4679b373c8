"""SSA values, nodes and graphs: the data structure every part of bpir shares."""

from __future__ import annotations

import enum
import itertools
from dataclasses import dataclass, field
from typing import Any

import networkx as nx

from .types import TensorType

_ids = itertools.count()


class Value:
    """An SSA value: produced once (by a node or as a graph input), typed statically."""

    __slots__ = ("type", "name", "uid")

    def __init__(self, type: TensorType, name: str | None = None):
        self.type = type
        self.name = name
        self.uid = next(_ids)

    @property
    def shape(self) -> tuple[int, ...]:
        return self.type.shape

    @property
    def dtype(self) -> str:
        return self.type.dtype

    def __repr__(self) -> str:
        return f"Value({self.name or self.uid}: {self.type})"


@dataclass(eq=False)
class Node:
    """One operation: op name, inputs, declared attributes, outputs and the user's source line."""

    op: str
    inputs: list[Value]
    attrs: dict[str, Any]
    outputs: list[Value]
    loc: str | None = None

    @property
    def out(self) -> Value:
        (v,) = self.outputs
        return v


class StrFlag(str, enum.Enum):
    """A closed set of string flags: members are ``str`` and print, format and JSON-encode as
    their plain value, so the IR text, artifacts and reports read as before."""

    def __str__(self) -> str:
        return str.__str__(self)

    def __format__(self, spec: str) -> str:
        return str.__format__(str.__str__(self), spec)


class Role(StrFlag):
    """Why a backward graph's input exists (printed before the input in the IR header)."""

    NONE = ""
    RESIDUAL = "residual"  # a forward value saved for the backward
    COTANGENT = "cotangent"  # the cotangent of a forward output


@dataclass(eq=False)
class InputInfo:
    """Why a graph input exists: its role and, for residuals, the forward value it carries
    (a plain string role, as in ``InputInfo("residual")``, is read as its ``Role``)."""

    role: Role = Role.NONE
    origin: str = ""

    def __post_init__(self) -> None:
        self.role = Role(self.role)


@dataclass(eq=False)
class Graph:
    """Ordered inputs, nodes in topological order, ordered outputs."""

    name: str
    inputs: list[Value]
    nodes: list[Node]
    outputs: list[Value]
    input_info: dict[int, InputInfo] = field(default_factory=dict)

    def __str__(self) -> str:
        from .printer import print_graph

        return print_graph(self)

    def producers(self) -> dict[Value, Node]:
        return {v: n for n in self.nodes for v in n.outputs}

    def users(self) -> dict[Value, list[Node]]:
        """Map each value to the nodes that read it (in program order)."""
        out: dict[Value, list[Node]] = {}
        for n in self.nodes:
            for v in n.inputs:
                out.setdefault(v, []).append(n)
        return out

    def to_networkx(self) -> nx.MultiDiGraph:
        """A node per op and per graph input/output; an edge per value use, keyed by position."""
        g = nx.MultiDiGraph(name=self.name)
        src: dict[Value, Any] = {}
        for i, v in enumerate(self.inputs):
            g.add_node(("in", i), op="input", label=f"%{v.name}: {v.type}")
            src[v] = ("in", i)
        for k, n in enumerate(self.nodes):
            g.add_node(k, op=n.op, label=n.op, loc=n.loc)
            for pos, v in enumerate(n.inputs):
                if v in src:
                    g.add_edge(src[v], k, key=pos, type=str(v.type))
            for v in n.outputs:
                src[v] = k
        for i, v in enumerate(self.outputs):
            g.add_node(("out", i), op="output", label=f"return {i}")
            if v in src:
                g.add_edge(src[v], ("out", i), key=0, type=str(v.type))
        return g

    def to_dot(self, **options) -> str:
        """Graphviz source: fused regions as clusters of their ops (options: ``bpir.dot.drawing``)."""
        from .dot import to_dot

        return to_dot(self, **options)


def topological_nodes(nodes: list[Node], inputs: list[Value]) -> list[Node]:
    """Nodes sorted so producers precede users (stable w.r.t. the given order); raises on a cycle."""
    produced = {v: i for i, n in enumerate(nodes) for v in n.outputs}
    dg = nx.DiGraph()
    dg.add_nodes_from(range(len(nodes)))
    for i, n in enumerate(nodes):
        for v in n.inputs:
            if v in produced:
                dg.add_edge(produced[v], i)
    order = nx.lexicographical_topological_sort(dg)
    return [nodes[i] for i in order]
