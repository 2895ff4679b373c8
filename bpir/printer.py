"""The textual IR: every binder typed, one node a line, nested graphs indented under their node."""

from __future__ import annotations

import base64
import json
import math
import re

import numpy as np

from .ir import Graph, Node, Value
from .location import escape
from .registry import REQUIRED, get_op

DENSE_LIMIT = 16  # constants with more elements print as base64 of their bytes
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")


def format_scalar(x) -> str:
    """IR text of a bool, int or float (``inf``/``nan`` spelled out); anything else is refused."""
    if isinstance(x, (bool, np.bool_)):
        return "true" if x else "false"
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    if not isinstance(x, (float, np.floating)):
        raise TypeError(f"not a scalar attribute value: {type(x).__name__}")
    x = float(x)
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return repr(x)


def format_attr(value) -> str:
    if isinstance(value, np.ndarray):
        if value.ndim == 0:
            return format_scalar(value.item())
        if value.size <= DENSE_LIMIT:
            flat = ", ".join(format_scalar(v) for v in value.ravel())
            return f"dense<[{flat}]>"
        data = base64.b64encode(np.ascontiguousarray(value).tobytes()).decode()
        return f'dense<b64:"{data}">'
    if isinstance(value, tuple):
        inner = ", ".join(format_attr(v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    if isinstance(value, str):
        return json.dumps(value)
    return format_scalar(value)


class ValueNames:
    """How the text IR names values: inputs keep valid unique names, every other value is
    numbered in node order. Public because autodiff and the code generators name values alike."""

    def __init__(self, graph: Graph):
        self.names: dict[Value, str] = {}
        taken = set()
        for i, v in enumerate(graph.inputs):
            name = v.name if v.name and _IDENT.fullmatch(v.name) and v.name not in taken else f"arg{i}"
            while name in taken:
                name += "_"
            taken.add(name)
            self.names[v] = name
        counter = 0
        for n in graph.nodes:
            for v in n.outputs:
                self.names[v] = str(counter)
                counter += 1

    def __getitem__(self, v: Value) -> str:
        return "%" + self.names.get(v, f"?{v.uid}")


def print_graph(graph: Graph, indent: str = "") -> str:
    names = ValueNames(graph)
    lines = [indent + _header(graph, names)]
    for node in graph.nodes:
        lines.extend(_node_lines(node, names, indent + "  "))
    lines.append(indent + "  return " + ", ".join(names[v] for v in graph.outputs))
    lines.append(indent + "}")
    return "\n".join(lines) + ("\n" if not indent else "")


def _header(graph: Graph, names: ValueNames) -> str:
    params = []
    for i, v in enumerate(graph.inputs):
        info = graph.input_info.get(i)
        p = f"{names[v]}: {v.type}"
        if info and info.role:
            p = f"{info.role} {p}"
        if info and info.origin:
            p += f" from {json.dumps(info.origin)}"
        params.append(p)
    results = ", ".join(str(v.type) for v in graph.outputs)
    name = re.sub(r"[^A-Za-z0-9_.]", "_", graph.name) or "f"  # what the parser reads back
    if len(params) > 4 or graph.input_info:
        body = "".join(f"\n    {p}," for p in params)
        return f"func @{name}({body}\n) -> ({results}) {{"
    return f"func @{name}({', '.join(params)}) -> ({results}) {{"


def _is_default(value, default) -> bool:
    """Attributes equal to the op's default are left out of the text (the parser restores them)."""
    return default is not REQUIRED and type(value) is type(default) and value == default


def _node_lines(node: Node, names: ValueNames, indent: str) -> list[str]:
    results = ", ".join(f"{names[v]}: {v.type}" for v in node.outputs)
    text = f"{results} = {node.op}"
    if node.inputs:
        text += " " + ", ".join(names[v] for v in node.inputs)
    defaults = get_op(node.op).attrs
    plain = {k: v for k, v in node.attrs.items()
             if not isinstance(v, Graph) and not _is_default(v, defaults.get(k, REQUIRED))}  # fmt: skip
    regions = {k: v for k, v in node.attrs.items() if isinstance(v, Graph)}
    if plain:
        text += " {" + ", ".join(f"{k}={format_attr(v)}" for k, v in plain.items()) + "}"
    if node.loc:
        text = f"{text:<56} loc({escape(node.loc)})"
    lines = [indent + text]
    for key, region in regions.items():
        body = print_graph(region, indent + "    ")
        lines.append(f"{indent}  {key} = {body.lstrip()}")
    return lines
