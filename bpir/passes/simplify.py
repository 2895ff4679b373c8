"""Algebraic simplification and broadcast sinking, as named rewrite rules (``RULES``, in the
order they are tried; the first that matches a node replaces it; each can be switched off:
``optimize(graph, disable_rules={"double_transpose"})``).

Transposes of the last two axes feeding a matmul become its transpose_a/transpose_b flags.
Identities applied: x*1, 1*x, x+0, 0+x, x-0, x/1 (only where x already has the result's
shape), neg(neg x), transpose of transpose, reshape chains, broadcast chains, reshape /
broadcast / cast to the value's own type. x-x and x*0 are NOT folded for floats (NaN and inf
would change); x-x -> 0 is applied to integers only.

Broadcast sinking: an elementwise op whose non-scalar operands are all broadcasts of
same-shaped values runs on the small values and is broadcast after, so elementwise chains
stay on the smallest iteration space and stay fusable."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..builder import Builder
from ..ir import Graph, Node, Value
from ..registry import Kind, get_op
from ..types import is_int
from .rewrite import RulePass, RuleRunner, RuleTable, rewrite

RULES = RuleTable()


@dataclass
class Facts:
    """What the rules may ask about the graph rewritten so far: each value's producer (in the
    new graph) and how many times the original graph reads each value."""

    producers: dict[Value, Node] = field(default_factory=dict)
    uses: dict[Value, int] = field(default_factory=dict)

    def producer(self, v: Value) -> Node | None:
        return self.producers.get(v)

    def scalar_const(self, v: Value):
        """The Python value of ``v`` if it is a (broadcast) scalar constant, else None."""
        node = self.producers.get(v)
        while node is not None and node.op == "broadcast_to":
            node = self.producers.get(node.inputs[0])
        if node is not None and node.op == "constant" and node.attrs["value"].size == 1:
            return node.attrs["value"].reshape(()).item()
        return None


def _simplify(graph: Graph, rules: RuleRunner) -> Graph:
    facts = Facts()
    uses = facts.uses
    for n in graph.nodes:
        for v in n.inputs:
            uses[v] = uses.get(v, 0) + 1
    for v in graph.outputs:
        uses[v] = uses.get(v, 0) + 1

    def rule(b, node):
        outs = rules(facts, b, node)
        if outs is None:
            for v in node.outputs:
                facts.producers[v] = node
        elif len(outs) == 1 and b.nodes and b.nodes[-1].outputs == outs:  # a rebuilt node stands in
            facts.producers[outs[0]], uses[outs[0]] = b.nodes[-1], uses.get(node.outputs[0], 0)
        return outs

    return rewrite(graph, rule)


simplify = RulePass("simplify", RULES, _simplify)


def _swaps_last_two(node: Node | None) -> bool:
    if node is None or node.op != "transpose":
        return False
    perm, n = node.attrs["perm"], len(node.attrs["perm"])
    return n >= 2 and perm == (*range(n - 2), n - 1, n - 2)


# --- the rules, in the order they are tried -------------------------------------------------


@RULES.rule("transpose")
def transpose_of_matmul(f: Facts, b: Builder, node: Node) -> list[Value] | None:
    """transpose(matmul(A, B)) read once -> matmul(B, A) with flipped flags: (AB)^T = B^T A^T."""
    mm = f.producer(node.inputs[0])
    if not _swaps_last_two(node) or mm is None or mm.op != "matmul" or f.uses.get(mm.out) != 1:
        return None
    a = mm.attrs
    return [b.matmul(mm.inputs[1], mm.inputs[0], transpose_a=not a["transpose_b"],
                     transpose_b=not a["transpose_a"])]  # fmt: skip


@RULES.rule("reshape")
def noop_reshape(f: Facts, b: Builder, node: Node) -> list[Value] | None:
    """reshape(x) to x's own type -> x."""
    return [node.inputs[0]] if node.inputs[0].type == node.out.type else None


@RULES.rule("broadcast_to")
def noop_broadcast(f: Facts, b: Builder, node: Node) -> list[Value] | None:
    """broadcast_to(x) to x's own type -> x."""
    return [node.inputs[0]] if node.inputs[0].type == node.out.type else None


@RULES.rule("stop_gradient")
def drop_stop_gradient(f: Facts, b: Builder, node: Node) -> list[Value] | None:
    """stop_gradient(x) -> x (gradients are taken before the passes run; it only marks them)."""
    return [node.inputs[0]]


@RULES.rule("cast")
def noop_cast(f: Facts, b: Builder, node: Node) -> list[Value] | None:
    """cast(x) to x's own dtype -> x."""
    return [node.inputs[0]] if node.inputs[0].dtype == node.attrs["dtype"] else None


@RULES.rule("transpose")
def noop_transpose(f: Facts, b: Builder, node: Node) -> list[Value] | None:
    """transpose(x) by the identity permutation -> x."""
    perm = node.attrs["perm"]
    return [node.inputs[0]] if perm == tuple(range(len(perm))) else None


@RULES.rule("matmul")
def matmul_transpose_flags(f: Facts, b: Builder, node: Node) -> list[Value] | None:
    """matmul(transpose(x), y) -> matmul(x, y, transpose_a) (either operand): read transposed, not copied."""
    (x, y), a = node.inputs, node.attrs
    px, py = f.producer(x), f.producer(y)
    fold_a, fold_b = _swaps_last_two(px), _swaps_last_two(py)
    if not (fold_a or fold_b):
        return None
    return [b.matmul(px.inputs[0] if fold_a else x, py.inputs[0] if fold_b else y,
                     transpose_a=a["transpose_a"] != fold_a, transpose_b=a["transpose_b"] != fold_b)]  # fmt: skip


@RULES.rule("neg")
def double_neg(f: Facts, b: Builder, node: Node) -> list[Value] | None:
    """neg(neg(x)) -> x."""
    src = f.producer(node.inputs[0])
    return [src.inputs[0]] if src is not None and src.op == "neg" else None


@RULES.rule("reshape")
def reshape_chain(f: Facts, b: Builder, node: Node) -> list[Value] | None:
    """reshape(reshape | squeeze | expand_dims (x)) -> one reshape of x."""
    src = f.producer(node.inputs[0])
    if src is None or src.op not in ("reshape", "squeeze", "expand_dims"):
        return None
    return [b.reshape(src.inputs[0], node.out.shape)]


@RULES.rule("broadcast_to")
def broadcast_chain(f: Facts, b: Builder, node: Node) -> list[Value] | None:
    """broadcast_to(broadcast_to(x)) -> one broadcast_to of x."""
    src = f.producer(node.inputs[0])
    if src is None or src.op != "broadcast_to":
        return None
    return [b.broadcast_to(src.inputs[0], node.out.shape)]


@RULES.rule("transpose")
def double_transpose(f: Facts, b: Builder, node: Node) -> list[Value] | None:
    """transpose(transpose(x)) -> one transpose of x by the composed permutation."""
    src = f.producer(node.inputs[0])
    if src is None or src.op != "transpose":
        return None
    return [b.transpose(src.inputs[0], tuple(src.attrs["perm"][p] for p in node.attrs["perm"]))]


_IDENTITY_RIGHT = {"mul": 1, "add": 0, "sub": 0, "div": 1}
_IDENTITY_LEFT = {"mul": 1, "add": 0}


@RULES.rule(*_IDENTITY_RIGHT)
def right_identity(f: Facts, b: Builder, node: Node) -> list[Value] | None:
    """x*1, x+0, x-0, x/1 -> x, where x already has the result's type."""
    x, y = node.inputs
    return [x] if f.scalar_const(y) == _IDENTITY_RIGHT[node.op] and x.type == node.out.type else None


@RULES.rule(*_IDENTITY_LEFT)
def left_identity(f: Facts, b: Builder, node: Node) -> list[Value] | None:
    """1*x, 0+x -> x, where x already has the result's type."""
    x, y = node.inputs
    return [y] if f.scalar_const(x) == _IDENTITY_LEFT[node.op] and y.type == node.out.type else None


@RULES.rule("sub")
def int_self_sub(f: Facts, b: Builder, node: Node) -> list[Value] | None:
    """x - x -> 0 for integers only (for floats, inf - inf and nan - nan are nan)."""
    x, y = node.inputs
    return [b.zeros(node.out.type)] if x is y and is_int(node.out.dtype) else None


@RULES.rule()
def sink_broadcast(f: Facts, b: Builder, node: Node) -> list[Value] | None:
    """op(broadcast_to(x), broadcast_to(y), scalars) -> broadcast_to(op(x, y, scalars)), elementwise op."""
    if get_op(node.op).kind is not Kind.ELEMENTWISE or len(node.outputs) != 1:
        return None
    sources, small = [], None
    for v in node.inputs:
        p = f.producer(v)
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
