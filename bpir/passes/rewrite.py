"""A small rewriting driver the simplification passes share: walk nodes in order, let a rule
replace a node's outputs with existing or newly built values, and rebuild the graph."""

from __future__ import annotations

from collections.abc import Callable

from ..builder import Builder
from ..ir import Graph, Node, Value
from ..location import at

# rule(builder, node) -> replacement outputs, or None to keep the node
Rule = Callable[[Builder, Node], "list[Value] | None"]


def rewrite(graph: Graph, rule: Rule) -> Graph:
    b = Builder(graph.name)
    b.inputs, b.input_info = list(graph.inputs), dict(graph.input_info)
    env: dict[Value, Value] = {v: v for v in graph.inputs}
    for node in graph.nodes:
        view = Node(node.op, [env[v] for v in node.inputs], node.attrs, node.outputs, node.loc)
        with at(node.loc):
            outs = rule(b, view)
        if outs is None:
            b.nodes.append(view)
            outs = node.outputs
        env.update(zip(node.outputs, outs))
    return Graph(graph.name, graph.inputs, b.nodes, [env[v] for v in graph.outputs], graph.input_info)
