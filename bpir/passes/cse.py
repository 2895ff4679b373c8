"""Common-subexpression elimination: nodes with the same op, inputs and attributes (an op's
identity comes from its declared attributes) compute the same value once."""

from __future__ import annotations

import numpy as np

from ..ir import Graph, Value
from .rewrite import rewrite


def attr_key(value):
    """A hashable key for an attribute value (arrays by bytes, nested graphs by their text)."""
    if isinstance(value, np.ndarray):
        return ("array", value.dtype.str, value.shape, value.tobytes())
    if isinstance(value, tuple):
        return tuple(attr_key(v) for v in value)
    if isinstance(value, Graph):
        return ("graph", str(value))
    if isinstance(value, float) and value != value:
        return ("nan",)
    return (type(value).__name__, value)


def cse(graph: Graph) -> Graph:
    seen: dict[tuple, list[Value]] = {}

    def rule(b, node):
        key = (node.op, tuple(v.uid for v in node.inputs),
               tuple((k, attr_key(v)) for k, v in node.attrs.items()))  # fmt: skip
        if key in seen:
            return seen[key]
        seen[key] = node.outputs
        return None

    return rewrite(graph, rule)
