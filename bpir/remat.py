"""Which forward values the backward graph saves: everything it reads ("save"), or a minimum
cut that recomputes cheap elementwise and layout values in the backward instead ("remat").

The cut is over a flow network of the forward graph (networkx ``minimum_cut``): each value is
an edge ``in -> out`` whose capacity is its size in bytes; cutting it means saving it. Values the
backward reads must be available (``out -> sink``); values of ops that must not be recomputed
(matmul, convolution, reductions, gathers, graph inputs) are only available if saved
(``source -> in``); a recomputable op's inputs must be available wherever it is."""

from __future__ import annotations

import networkx as nx

from .ir import Graph, Node, Value
from .registry import Kind, get_op

RECOMPUTABLE_KINDS = {Kind.ELEMENTWISE, Kind.BROADCAST, Kind.LAYOUT}


def recomputable(node: Node) -> bool:
    """Cheap to run again in the backward: constants, elementwise, broadcast and layout ops."""
    return len(node.outputs) == 1 and (node.op == "constant" or get_op(node.op).kind in RECOMPUTABLE_KINDS)


def min_cut_saved(forward: Graph, needed: list[Value]) -> set[Value]:
    """The values to save so that every ``needed`` value is saved or recomputable from saved
    ones, with the fewest bytes saved."""
    producer = forward.producers()
    net = nx.DiGraph()
    source, sink = "source", "sink"

    def node_in(v):
        return ("in", v)

    def node_out(v):
        return ("out", v)

    values = list(forward.inputs) + [v for n in forward.nodes for v in n.outputs]
    free = {v for v in values if (p := producer.get(v)) is not None and p.op == "constant" and v.shape == ()}
    for v in values:
        p = producer.get(v)
        # scalar constants cost nothing to re-emit; +1 prefers recomputing over saving equal sizes
        net.add_edge(node_in(v), node_out(v), capacity=0 if v in free else v.type.nbytes + 1)
        if p is None or not recomputable(p):
            net.add_edge(source, node_in(v))  # no capacity attribute: infinite
        else:
            for u in p.inputs:
                net.add_edge(node_out(u), node_in(v))
    for v in needed:
        net.add_edge(node_out(v), sink)
    _, (reachable, _) = nx.minimum_cut(net, source, sink)
    return {v for v in values if v not in free and node_in(v) in reachable and node_out(v) not in reachable}


def recompute_nodes(forward: Graph, needed: list[Value], saved: set[Value]) -> list[Node]:
    """The forward nodes the backward must run again (in forward order) to rebuild ``needed``
    from ``saved``."""
    producer = forward.producers()
    todo, chosen = [v for v in needed if v not in saved], set()
    while todo:
        v = todo.pop()
        p = producer.get(v)
        if p is None or p in chosen:
            continue
        if not recomputable(p):
            raise AssertionError(f"{p.op} result is neither saved nor recomputable")
        chosen.add(p)
        todo.extend(u for u in p.inputs if u not in saved)
    return [n for n in forward.nodes if n in chosen]
