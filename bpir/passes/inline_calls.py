"""Replace each custom_vjp_call by its forward graph (the VJP matters only to autodiff)."""

from __future__ import annotations

from ..builder import inline
from ..ir import Graph
from .rewrite import rewrite


def inline_calls(graph: Graph) -> Graph:
    if not any(n.op == "custom_vjp_call" for n in graph.nodes):
        return graph
    return rewrite(
        graph,
        lambda b, node: (
            inline(b, inline_calls(node.attrs["fwd"]), node.inputs) if node.op == "custom_vjp_call" else None
        ),
    )
