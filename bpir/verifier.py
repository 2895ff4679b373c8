"""The verifier: types agree with each op's rule, SSA, no dangling values, acyclic."""

from __future__ import annotations

import os

import networkx as nx
import numpy as np

from .errors import VerifyError
from .ir import Graph
from .location import is_clean
from .parser import MAX_REGION_DEPTH
from .registry import get_op, normalize_attrs


def verify(graph: Graph, depth: int = 0) -> Graph:
    """Raise VerifyError naming the first broken invariant; return the graph unchanged."""
    if depth > MAX_REGION_DEPTH:
        raise VerifyError(f"{graph.name}: graphs nested deeper than {MAX_REGION_DEPTH} levels")
    defined = set()
    for v in graph.inputs:
        if v in defined:
            raise VerifyError(f"{graph.name}: input {v} listed twice")
        defined.add(v)
    for i, node in enumerate(graph.nodes):
        if node.loc is not None and not (isinstance(node.loc, str) and is_clean(node.loc)):
            raise VerifyError(f"{graph.name}: node {i} ({node.op}) has a location with a control "
                              f"character or ')': {node.loc!r}")  # fmt: skip
        where = f"{graph.name}: node {i} ({node.op}{', ' + node.loc if node.loc else ''})"
        for v in node.inputs:
            if v not in defined:
                raise VerifyError(f"{where} reads {v}, which is not defined before it")
        try:
            opdef = get_op(node.op)
        except KeyError as e:
            raise VerifyError(f"{where}: {e.args[0]}") from None
        if opdef.arity is not None and len(node.inputs) != opdef.arity:
            raise VerifyError(f"{where} takes {opdef.arity} operands, got {len(node.inputs)}")
        try:
            if not _same_attrs(normalize_attrs(opdef, node.attrs), node.attrs):
                raise VerifyError(f"{where} has attributes that are not normalised: {node.attrs}")
            types = opdef.infer([v.type for v in node.inputs], node.attrs)
        except (ValueError, TypeError) as e:
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
                verify(attr, depth + 1)
    for v in graph.outputs:
        if v not in defined:
            raise VerifyError(f"{graph.name}: output {v} is never defined")
    if not nx.is_directed_acyclic_graph(graph.to_networkx()):
        raise VerifyError(f"{graph.name}: the dataflow graph has a cycle")
    return graph


def _same_attrs(a: dict, b: dict) -> bool:
    """Equal attribute dicts, values of equal type (``1`` is not ``1.0`` nor ``True``)."""
    return a.keys() == b.keys() and all(type(a[k]) is type(b[k]) and _same(a[k], b[k]) for k in a)


def _same(x, y) -> bool:
    if x is y:
        return True
    if isinstance(x, tuple):
        return len(x) == len(y) and all(type(p) is type(q) and _same(p, q) for p, q in zip(x, y))
    return bool(x == y) if not isinstance(x, np.ndarray) else False


def verify_enabled() -> bool:
    return os.environ.get("BPIR_VERIFY", "") not in ("", "0")
