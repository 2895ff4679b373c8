"""The verifier: types agree with each op's rule, SSA, no dangling values, acyclic."""

from __future__ import annotations

import os

import networkx as nx

from .errors import ShapeError, VerifyError
from .ir import Graph
from .registry import get_op, normalize_attrs


def verify(graph: Graph) -> Graph:
    """Raise VerifyError naming the first broken invariant; return the graph unchanged."""
    defined = set()
    for v in graph.inputs:
        if v in defined:
            raise VerifyError(f"{graph.name}: input {v} listed twice")
        defined.add(v)
    for i, node in enumerate(graph.nodes):
        where = f"{graph.name}: node {i} ({node.op}{', ' + node.loc if node.loc else ''})"
        for v in node.inputs:
            if v not in defined:
                raise VerifyError(f"{where} reads {v}, which is not defined before it")
        opdef = get_op(node.op)
        try:
            if normalize_attrs(opdef, node.attrs) != node.attrs:
                raise VerifyError(f"{where} has attributes that are not normalised: {node.attrs}")
            types = opdef.infer([v.type for v in node.inputs], node.attrs)
        except (ShapeError, TypeError) as e:
            raise VerifyError(f"{where}: {e}") from None
        if types != [v.type for v in node.outputs]:
            raise VerifyError(f"{where} declares {[str(v.type) for v in node.outputs]}, "
                              f"its rule gives {[str(t) for t in types]}")  # fmt: skip
        for v in node.outputs:
            if v in defined:
                raise VerifyError(f"{where} redefines {v} (not SSA)")
            defined.add(v)
        for attr in node.attrs.values():
            if isinstance(attr, Graph):
                verify(attr)
    for v in graph.outputs:
        if v not in defined:
            raise VerifyError(f"{graph.name}: output {v} is never defined")
    if not nx.is_directed_acyclic_graph(graph.to_networkx()):
        raise VerifyError(f"{graph.name}: the dataflow graph has a cycle")
    return graph


def verify_enabled() -> bool:
    return os.environ.get("BPIR_VERIFY", "") not in ("", "0")
