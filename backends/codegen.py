"""What the source-generating backends share: value naming, IR comments, constants, the one
node-by-node generation loop (``Emitter.emit_nodes`` over a backend's table of rules), and the
lowering of ops a backend lacks through their decompositions."""

from __future__ import annotations

import keyword
import re
from collections.abc import Callable, Mapping

import numpy as np

from bpir.builder import Builder
from bpir.ir import Graph, Node, Value
from bpir.location import at, escape
from bpir.passes.inline_calls import inline_calls
from bpir.passes.rewrite import rewrite
from bpir.printer import ValueNames
from bpir.registry import get_op

# a backend's lowering of one op: (node, its operands' names) -> the expression its outputs are
# assigned, or None when the rule emitted the node's statements itself
Rule = Callable[[Node, list[str]], str | None]


def call(fn: str) -> Rule:
    """The rule calling ``fn`` on the node's operands (``np.exp(x)``)."""
    return lambda node, args: f"{fn}({', '.join(args)})"


class Emitter:
    """Builds a Python function for a graph, one statement per node, each commented with its IR."""

    def __init__(self, graph: Graph, header: str = "", indent: str = "    "):
        self.graph = graph
        self.ir_names = ValueNames(graph)
        self.names: dict[Value, str] = {}
        self.lines: list[str] = []
        self.globals: dict[str, object] = {}
        self.header = header
        self.indent = indent
        for v in graph.inputs:
            name = _py_ident(self.ir_names[v][1:])
            self.names[v] = name + "_" if re.fullmatch(r"[vc]\d+", name) else name

    def rename_inputs(self, reserved: re.Pattern) -> None:
        """Rename an input named like a name the generated code binds itself (``in_`` prefix;
        ``reserved`` must match no name starting with ``in_``)."""
        taken = set(self.names.values())
        for v in self.graph.inputs:
            name = self.names[v]
            if reserved.fullmatch(name):
                name = "in_" + name
                while name in taken:
                    name += "_"
                self.names[v] = name
                taken.add(name)

    @staticmethod
    def function_name(graph: Graph) -> str:
        return _py_ident(graph.name)

    def name(self, v: Value) -> str:
        return self.names[v]

    def bind(self, v: Value) -> str:
        name = "v" + self.ir_names[v][1:]
        self.names[v] = name
        return name

    def line(self, code: str, node: Node | None = None) -> None:
        if node is not None:
            out = ", ".join(f"{self.ir_names[v]}: {v.type}" for v in node.outputs)
            comment = f"# {out} = {node.op}" + (f"  {escape(node.loc)}" if node.loc else "")
            code = f"{code:<60} {comment}"
        self.lines.append(self.indent + code)

    def emit_nodes(self, rules: Mapping[str, Rule]) -> None:
        """The generation loop of every source backend: node by node, ``outputs = rule(node,
        operand names)`` (a tuple unpacking for several outputs), commented with the node's IR."""
        for node in self.graph.nodes:
            expression = rules[node.op](node, [self.names[v] for v in node.inputs])
            if expression is not None:
                self.line(f"{', '.join(self.bind(v) for v in node.outputs)} = {expression}", node)

    def alias(self, v: Value, u: Value) -> None:
        """Spell ``v`` as ``u`` (a view whose every reader reads ``u`` itself)."""
        self.names[v] = self.names[u]

    def take_lines(self) -> list[str]:
        """The statements emitted so far, handed over and cleared (for a caller that assembles the
        function itself, as the CUDA driver does)."""
        lines, self.lines = self.lines, []
        return lines

    def constant(self, value: np.ndarray) -> str:
        name = f"c{len(self.globals)}"
        self.globals[name] = value
        return name

    def finish(self, body_prefix: str = "") -> str:
        params = ", ".join(self.names[v] for v in self.graph.inputs)
        outs = ", ".join(self.names[v] for v in self.graph.outputs)
        head = [f"# bpir generated code for func @{escape(self.graph.name)}"]
        if self.header:
            head.append(self.header)
        head += ["", "", f"{body_prefix}def {self.function_name(self.graph)}({params}):"]
        tail = [f"{self.indent}return ({outs}{',' if len(self.graph.outputs) == 1 else ''})"]
        return "\n".join(head + self.lines + tail) + "\n"


# names the generated modules use for themselves: an input of that name gets a "_" appended
RESERVED = {"np", "k", "jnp", "jax", "lax", "math", "cuda", "ws", "results", "kernels", "float", "launcher"}


def _py_ident(name: str) -> str:
    """An ASCII Python identifier for an IR name (``params.W1`` -> ``params_W1``)."""
    ident = re.sub(r"[^A-Za-z0-9_]", "_", name)
    if not ident or ident[0].isdigit():
        ident = "_" + ident
    return ident + "_" if keyword.iskeyword(ident) or ident in RESERVED else ident


def decompose_missing(graph: Graph, supported: set[str], backend: str) -> Graph:
    """Inline custom VJP calls and lower every op the backend lacks through its decomposition."""
    graph = inline_calls(graph)
    if all(n.op in supported for n in graph.nodes):
        return graph

    def lower(b: Builder, node: Node):
        if node.op in supported:
            return None
        opdef = get_op(node.op)
        if opdef.decompose is None:
            raise NotImplementedError(f"op {node.op!r} is not supported by the {backend} backend "
                                      "and has no decomposition")  # fmt: skip
        with at(node.loc):
            return opdef.decompose(b, node)

    return decompose_missing(rewrite(graph, lower), supported, backend)
