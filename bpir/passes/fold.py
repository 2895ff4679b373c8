"""Constant folding: a node whose inputs are all constants is evaluated at compile time by the
NumPy backend (the reference), unless that would grow the graph (e.g. a broadcast of a scalar
stays a broadcast: a folded result is never larger than its largest input)."""

from __future__ import annotations

from ..backend_registry import backend_module
from ..ir import Graph, Node
from ..registry import Kind, get_op
from .rewrite import rewrite


def _foldable(node: Node, consts: dict) -> bool:
    if get_op(node.op).kind in (Kind.SOURCE, Kind.FUSED) or not node.inputs:
        return False
    if not all(v in consts for v in node.inputs):
        return False
    return max(v.type.size for v in node.outputs) <= max(v.type.size for v in node.inputs)


def fold(graph: Graph) -> Graph:
    consts: dict = {}
    numpy_backend = backend_module("numpy")

    def rule(b, node):
        if node.op == "constant":
            consts[node.out] = node.attrs["value"]
            return None
        if not _foldable(node, consts):
            return None
        ins = list(dict.fromkeys(node.inputs))  # one parameter per value (matmul(c, c) reads c twice)
        single = Graph("fold", ins, [node], list(node.outputs))
        run, _ = numpy_backend.compile_graph(single, plan_memory=False)
        values = run(*[consts[v] for v in ins])
        outs = []
        for v, val in zip(node.outputs, values):
            c = b.const(val, v.dtype)
            consts[c] = b.nodes[-1].attrs["value"]
            outs.append(c)
        return outs

    return rewrite(graph, rule)
