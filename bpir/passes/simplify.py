"""Algebraic simplification and broadcast sinking.

Transposes of the last two axes feeding a matmul become its transpose_a/transpose_b flags.
Identities applied: x*1, 1*x, x+0, 0+x, x-0, x/1 (only where x already has the result's
shape), neg(neg x), transpose of transpose, reshape chains, broadcast chains, reshape /
broadcast / cast to the value's own type. x-x and x*0 are NOT folded for floats (NaN and inf
would change); x-x -> 0 is applied to integers only.

Broadcast sinking: an elementwise op whose non-scalar operands are all broadcasts of
same-shaped values runs on the small values and is broadcast after, so elementwise chains
stay on the smallest iteration space and stay fusable."""

from __future__ import annotations

import numpy as np

from ..ir import Graph, Node, Value
from ..registry import Kind, get_op
from .rewrite import rewrite

_IDENTITY_RIGHT = {"mul": 1, "add": 0, "sub": 0, "div": 1}
_IDENTITY_LEFT = {"mul": 1, "add": 0}


def _scalar_const(producers, v: Value):
    """The Python value of ``v`` if it is a (broadcast) scalar constant, else None."""
    node = producers.get(v)
    while node is not None and node.op == "broadcast_to":
        node = producers.get(node.inputs[0])
    if node is not None and node.op == "constant" and node.attrs["value"].size == 1:
        return node.attrs["value"].reshape(()).item()
    return None


def simplify(graph: Graph) -> Graph:
    producers: dict[Value, Node] = {}
    uses: dict[Value, int] = {}
    for n in graph.nodes:
        for v in n.inputs:
            uses[v] = uses.get(v, 0) + 1
    for v in graph.outputs:
        uses[v] = uses.get(v, 0) + 1

    def rule(b, node):
        if _swaps_last_two(node) and (mm := producers.get(node.inputs[0])) is not None and mm.op == "matmul" \
                and uses.get(mm.out) == 1:  # fmt: skip
            # (A'B')^T = B'^T A'^T: the product is computed transposed instead of copied after
            a = mm.attrs
            return [b.matmul(mm.inputs[1], mm.inputs[0], transpose_a=not a["transpose_b"],
                             transpose_b=not a["transpose_a"])]  # fmt: skip
        outs = _simplify_node(b, node, producers)
        if outs is None:
            for v in node.outputs:
                producers[v] = node
        elif len(outs) == 1 and b.nodes and b.nodes[-1].outputs == outs:  # a rebuilt node stands in
            producers[outs[0]], uses[outs[0]] = b.nodes[-1], uses.get(node.outputs[0], 0)
        return outs

    return rewrite(graph, rule)


def _swaps_last_two(node: Node | None) -> bool:
    if node is None or node.op != "transpose":
        return False
    perm, n = node.attrs["perm"], len(node.attrs["perm"])
    return n >= 2 and perm == (*range(n - 2), n - 1, n - 2)


def _fold_transposes(b, node: Node, producers) -> list[Value] | None:
    """matmul(transpose(x), y) -> matmul(x, y, transpose_a) (either operand): the backends read
    the operand transposed (BLAS flags, dot_general numbers, strides) instead of copying it."""
    (x, y), a = node.inputs, node.attrs
    px, py = producers.get(x), producers.get(y)
    fold_a, fold_b = _swaps_last_two(px), _swaps_last_two(py)
    if not (fold_a or fold_b):
        return None
    return [b.matmul(px.inputs[0] if fold_a else x, py.inputs[0] if fold_b else y,
                     transpose_a=a["transpose_a"] != fold_a, transpose_b=a["transpose_b"] != fold_b)]  # fmt: skip


def _simplify_node(b, node: Node, producers) -> list[Value] | None:
    op, ins, a = node.op, node.inputs, node.attrs
    out = node.outputs[0] if node.outputs else None
    if op in ("reshape", "broadcast_to") and ins[0].type == out.type or op == "stop_gradient":
        return [ins[0]]
    if op == "cast" and ins[0].dtype == a["dtype"]:
        return [ins[0]]
    if op == "transpose" and a["perm"] == tuple(range(len(a["perm"]))):
        return [ins[0]]
    if op == "matmul":
        return _fold_transposes(b, node, producers)
    src = producers.get(ins[0]) if ins else None
    if src is not None:
        if op == "neg" and src.op == "neg":
            return [src.inputs[0]]
        if op == "reshape" and src.op in ("reshape", "squeeze", "expand_dims"):
            return [b.reshape(src.inputs[0], out.shape)]
        if op == "broadcast_to" and src.op == "broadcast_to":
            return [b.broadcast_to(src.inputs[0], out.shape)]
        if op == "transpose" and src.op == "transpose":
            perm = tuple(src.attrs["perm"][p] for p in a["perm"])
            return [b.transpose(src.inputs[0], perm)]
    if op in _IDENTITY_RIGHT and len(ins) == 2:
        x, y = ins
        if _scalar_const(producers, y) == _IDENTITY_RIGHT[op] and x.type == out.type:
            return [x]
        if op in _IDENTITY_LEFT and _scalar_const(producers, x) == _IDENTITY_LEFT[op] and y.type == out.type:
            return [y]
        if op == "sub" and x is y and out.dtype.startswith("i"):
            return [b.zeros(out.type)]
    return _sink_broadcast(b, node, producers)


def _sink_broadcast(b, node: Node, producers) -> list[Value] | None:
    if get_op(node.op).kind is not Kind.ELEMENTWISE or len(node.outputs) != 1:
        return None
    sources, small = [], None
    for v in node.inputs:
        p = producers.get(v)
        if v.shape == ():
            sources.append(v)
        elif p is not None and p.op == "broadcast_to" and (small is None or p.inputs[0].shape == small):
            small = p.inputs[0].shape
            sources.append(p.inputs[0])
        else:
            return None
    if small is None or int(np.prod(small)) >= node.out.type.size:
        return None
    inner = b.emit(node.op, *sources, **node.attrs)
    return [b.broadcast_to(inner, node.out.shape)]
