"""The reference interpreter: runs a graph node by node on NumPy arrays with each op's
reference implementation (``OpDef.impl``; an op without one runs its decomposition, as a
backend lacking it would). Constant folding and eager execution use it, so neither needs a
backend; every result is checked against the type its node declares."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .ir import Graph, Node, Value
from .registry import get_op
from .types import TensorType, dtype_name


def run(graph: Graph, args: Sequence) -> list[np.ndarray]:
    """``graph``'s outputs for input arrays ``args``, one per graph input, of its type (a Python
    scalar takes the input's dtype, as a weakly typed argument does)."""
    if len(args) != len(graph.inputs):
        raise TypeError(f"func @{graph.name} takes {len(graph.inputs)} inputs, got {len(args)}")
    env = {}
    for i, (v, a) in enumerate(zip(graph.inputs, args)):
        x = np.asarray(a, v.type.np_dtype) if isinstance(a, (bool, int, float)) else np.asarray(a)
        env[v] = _checked(x, v.type, f"input {i} of func @{graph.name}")
    for node in graph.nodes:
        env.update(zip(node.outputs, evaluate(node, [env[v] for v in node.inputs])))
    return [env[v] for v in graph.outputs]


def evaluate(node: Node, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
    """The outputs of ``node`` on input arrays (one per node input)."""
    op = get_op(node.op)
    if op.impl is None:
        return _run_decomposition(node, inputs)
    result = op.impl(*inputs, **node.attrs)
    outs = list(result) if isinstance(result, tuple) else [result]
    if len(outs) != len(node.outputs):
        raise TypeError(f"reference implementation of {node.op} returned {len(outs)} values, "
                        f"the node has {len(node.outputs)} outputs")  # fmt: skip
    what = f"reference implementation of {node.op}"
    for r, v in zip(outs, node.outputs):
        _checked(np.asarray(r), v.type, what)
    return outs  # as NumPy returned them (a reduction to a scalar gives a NumPy scalar)


def _run_decomposition(node: Node, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
    from .builder import Builder

    op = get_op(node.op)
    if op.decompose is None:
        raise NotImplementedError(
            f"op {node.op!r} has neither a reference implementation nor a decomposition"
        )
    b = Builder(node.op)
    args: list[Value] = [b.input(v.type) for v in node.inputs]
    outs = op.decompose(b, Node(node.op, args, node.attrs, node.outputs, node.loc))
    return run(b.finish(list(outs)), inputs)


def _checked(x: np.ndarray, want: TensorType, what: str) -> np.ndarray:
    """``x``, if it has the type ``want``; a TypeError naming ``what`` otherwise."""
    if x.shape != want.shape or dtype_name(x.dtype) != want.dtype:
        got = TensorType(x.shape, dtype_name(x.dtype))
        raise TypeError(f"{what}: got {got}, the graph declares {want}")
    return x
