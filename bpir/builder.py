"""Builder: appends type-checked nodes to a graph under construction."""

from __future__ import annotations

from typing import Any

import numpy as np

from .errors import ShapeError
from .ir import Graph, InputInfo, Node, Value
from .location import user_location
from .registry import get_op, normalize_attrs
from .types import TensorType, dtype_name


class Builder:
    """Creates inputs and nodes; every node's output types come from its op's type rule.

    ``b.emit("add", x, y)`` and the shorthand ``b.add(x, y)`` return the output value
    (a tuple for multi-output ops)."""

    def __init__(self, name: str = "f"):
        self.name = name
        self.inputs: list[Value] = []
        self.nodes: list[Node] = []
        self.input_info: dict[int, InputInfo] = {}

    def input(self, type: TensorType, name: str | None = None, info: InputInfo | None = None) -> Value:
        v = Value(type, name or f"arg{len(self.inputs)}")
        if info is not None:
            self.input_info[len(self.inputs)] = info
        self.inputs.append(v)
        return v

    def emit(self, op: str, *inputs: Value, loc: str | None = None, **attrs: Any):
        opdef = get_op(op)
        if opdef.arity is not None and len(inputs) != opdef.arity:
            raise TypeError(f"op {op!r} takes {opdef.arity} inputs, got {len(inputs)}")
        attrs = normalize_attrs(opdef, attrs)
        loc = loc or user_location()
        try:
            types = opdef.infer([v.type for v in inputs], attrs)
        except ShapeError as e:
            where = f" at {loc}" if loc else ""
            raise ShapeError(f"{op}: {e}{where}") from None
        outs = [Value(t) for t in types]
        self.nodes.append(Node(op, list(inputs), attrs, outs, loc))
        return outs[0] if len(outs) == 1 else tuple(outs)

    def copy_nodes(self, nodes, env: dict) -> None:
        """Append a copy of ``nodes`` (already type-checked) reading ``env[v]`` for each input
        ``v``; their outputs get fresh values, recorded in ``env``."""
        for node in nodes:
            outs = [Value(v.type) for v in node.outputs]
            self.nodes.append(Node(node.op, [env[v] for v in node.inputs], node.attrs, outs, node.loc))
            env.update(zip(node.outputs, outs))

    def __getattr__(self, op: str):
        if op.startswith("_"):
            raise AttributeError(op)
        get_op(op)
        return lambda *inputs, **attrs: self.emit(op, *inputs, **attrs)

    # -- small helpers used by the frontend, VJP rules and passes -------------------------

    def const(self, value, dtype=None) -> Value:
        """A constant; scalars and arrays alike (dtype defaults to the array's)."""
        arr = np.asarray(value)
        if dtype is not None:
            arr = arr.astype(np.dtype(TensorType((), dtype).np_dtype))
        else:
            arr = arr.astype(TensorType((), dtype_name(arr.dtype)).np_dtype)
        return self.emit("constant", value=arr)

    def scalar(self, value, dtype: str) -> Value:
        return self.const(value, dtype)

    def full(self, type: TensorType, value) -> Value:
        s = self.scalar(value, type.dtype)
        return s if type.shape == () else self.emit("broadcast_to", s, shape=type.shape)

    def zeros(self, type: TensorType) -> Value:
        return self.full(type, 0)

    def cast(self, x: Value, dtype: str) -> Value:
        dtype = dtype_name(dtype)
        return x if x.dtype == dtype else self.emit("cast", x, dtype=dtype)

    def reshape(self, x: Value, shape) -> Value:
        shape = tuple(shape)
        return x if x.shape == shape else self.emit("reshape", x, shape=shape)

    def broadcast_to(self, x: Value, shape) -> Value:
        shape = tuple(shape)
        return x if x.shape == shape else self.emit("broadcast_to", x, shape=shape)

    def transpose(self, x: Value, perm) -> Value:
        perm = tuple(perm)
        return x if perm == tuple(range(len(perm))) else self.emit("transpose", x, perm=perm)

    def sum_to(self, g: Value, shape: tuple[int, ...]) -> Value:
        """Undo NumPy broadcasting of a value of ``shape`` to ``g.shape`` by summing."""
        if g.shape == tuple(shape):
            return g
        lead = g.type.ndim - len(shape)
        axes = tuple(range(lead)) + tuple(
            lead + i for i, d in enumerate(shape) if d == 1 and g.shape[lead + i] != 1
        )
        s = self.emit("reduce_sum", g, axes=axes, keepdims=False) if axes else g
        return self.reshape(s, shape)

    def finish(self, outputs: list[Value]) -> Graph:
        return Graph(self.name, self.inputs, self.nodes, list(outputs), dict(self.input_info))


def inline(b: Builder, graph: Graph, args: list[Value]) -> list[Value]:
    """Copy ``graph``'s nodes into ``b`` with its inputs bound to ``args``; returns its outputs."""
    env = dict(zip(graph.inputs, args, strict=True))
    for n in graph.nodes:
        outs = [Value(v.type) for v in n.outputs]
        b.nodes.append(Node(n.op, [env[v] for v in n.inputs], dict(n.attrs), outs, n.loc))
        env.update(zip(n.outputs, outs))
    return [env[v] for v in graph.outputs]
