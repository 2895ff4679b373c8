"""Dead-code elimination: drop nodes whose outputs nothing reads."""

from __future__ import annotations

from ..ir import Graph


def live_nodes(graph: Graph) -> list:
    live = set(graph.outputs)
    keep = []
    for node in reversed(graph.nodes):
        if any(v in live for v in node.outputs):
            keep.append(node)
            live.update(node.inputs)
    return keep[::-1]


def dce(graph: Graph) -> Graph:
    return Graph(graph.name, graph.inputs, live_nodes(graph), graph.outputs, graph.input_info)
