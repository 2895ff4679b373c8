"""Replace each custom_vjp_call by its forward graph (the VJP matters only to autodiff)."""

from __future__ import annotations

from ..builder import Builder, inline
from ..ir import Graph


def inline_calls(graph: Graph) -> Graph:
    if not any(n.op == "custom_vjp_call" for n in graph.nodes):
        return graph
    b = Builder(graph.name)
    b.inputs, b.input_info = list(graph.inputs), dict(graph.input_info)
    env = {v: v for v in graph.inputs}
    for node in graph.nodes:
        args = [env[v] for v in node.inputs]
        if node.op == "custom_vjp_call":
            outs = inline(b, inline_calls(node.attrs["fwd"]), args)
        else:
            b.nodes.append(type(node)(node.op, args, node.attrs, node.outputs, node.loc))
            outs = node.outputs
        env.update(zip(node.outputs, outs))
    return Graph(graph.name, graph.inputs, b.nodes, [env[v] for v in graph.outputs], graph.input_info)
