"""Constant folding: a node whose inputs are all constants is evaluated at compile time by its
op's reference implementation (``bpir.interpret``), unless that would grow the graph (e.g. a
broadcast of a scalar stays a broadcast: a folded result is never larger than its largest input)."""

from __future__ import annotations

from ..interpret import evaluate
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

    def rule(b, node):
        if node.op == "constant":
            consts[node.out] = node.attrs["value"]
            return None
        if not _foldable(node, consts):
            return None
        outs = []
        for v, val in zip(node.outputs, evaluate(node, [consts[v] for v in node.inputs])):
            c = b.const(val, v.dtype)
            consts[c] = b.nodes[-1].attrs["value"]
            outs.append(c)
        return outs

    return rewrite(graph, rule)
