"""Elementwise fusion: maximal convex groups of elementwise ops over one iteration space become
one ``fused`` node whose region holds the scalar computation; broadcasts feeding a group are
absorbed (index arithmetic in the backends, no materialised copy); a group whose single result
only feeds a reduction becomes that reduction's prologue.

Convexity (no path leaving a group and re-entering it) is checked before each merge by a
backward search bounded to the nodes after the group's first member, so grouping never creates
a cycle; the rebuilt graph is topologically sorted with networkx, which would raise on one."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..ir import Graph, Node, Value, topological_nodes
from ..registry import Kind, get_op
from ..types import TensorType

MAX_GROUP_INPUTS = 24


@dataclass(eq=False)
class Group:
    """Members plus what the merge checks read, kept up to date by ``merge`` so a check costs
    O(external values), not O(members): ``reads`` are the values members read that no member
    produces, ``ins`` the same looked through absorbed broadcasts (the region's inputs)."""

    members: list[Node]
    shape: tuple[int, ...]
    first: int  # position of the earliest member
    member_set: set = field(default_factory=set)
    reads: set = field(default_factory=set)
    ins: set = field(default_factory=set)


def _fusible(node: Node) -> bool:
    return get_op(node.op).kind is Kind.ELEMENTWISE and len(node.outputs) == 1 and node.out.shape != ()


class _Grouper:
    def __init__(self, graph: Graph):
        self.graph = graph
        self.pos = {n: i for i, n in enumerate(graph.nodes)}
        self.producer = graph.producers()
        self.group_of: dict[Node, Group] = {}

    def source(self, v: Value, shape) -> Value:
        """Look through a broadcast_to into ``shape``: the group reads the small value."""
        p = self.producer.get(v)
        if p is not None and p.op == "broadcast_to" and v.shape == shape:
            return p.inputs[0]
        return v

    def singleton(self, node: Node) -> Group:
        shape = node.out.shape
        reads = set(node.inputs) - {node.out}
        ins = {self.source(v, shape) for v in node.inputs} - {node.out}
        return Group([node], shape, self.pos[node], {node}, reads, ins)

    def external_producers(self, g: Group) -> list[Node]:
        out = []
        for v in g.reads:
            p = self.producer.get(self.source(v, g.shape))
            if p is not None and p not in g.member_set:
                out.append(p)
            q = self.producer.get(v)
            if q is not None and q is not p and q not in g.member_set:
                out.append(q)
        return out

    def depends_on(self, node: Node, g: Group) -> bool:
        """Is there a path from a member of ``g`` to ``node``? (search bounded by position)"""
        stack, seen = [node], set()
        while stack:
            n = stack.pop()
            if n in g.member_set:
                return True
            if n in seen or self.pos[n] < g.first:
                continue
            seen.add(n)
            stack.extend(self.producer[v] for v in n.inputs if v in self.producer)
        return False

    def can_merge(self, a: Group, b: Group) -> bool:
        if a.shape != b.shape:
            return False
        if any(self.depends_on(p, a) for p in self.external_producers(b) if p not in a.member_set):
            return False
        return not any(self.depends_on(p, b) for p in self.external_producers(a) if p not in b.member_set)

    def _outside(self, values: set, a: Group, b: Group) -> set:
        """``values`` less those a member of ``a`` or ``b`` produces."""
        return {
            v for v in values if (p := self.producer.get(v)) not in a.member_set and p not in b.member_set
        }

    def merge(self, a: Group, b: Group) -> Group:
        big, small = (a, b) if len(a.members) >= len(b.members) else (b, a)
        big.reads = self._outside(big.reads | small.reads, big, small)
        big.ins = self._outside(big.ins | small.ins, big, small)
        big.members.extend(small.members)
        big.member_set |= small.member_set
        big.first = min(big.first, small.first)
        for n in small.members:
            self.group_of[n] = big
        return big

    def run(self) -> list[Group]:
        for node in self.graph.nodes:
            if not _fusible(node):
                continue
            g = self.singleton(node)
            self.group_of[node] = g
            candidates = {self.group_of[p] for v in node.inputs
                          if (p := self.producer.get(v)) in self.group_of}  # fmt: skip
            for c in sorted(candidates, key=lambda c: c.first):
                if c is not g and self.can_merge(c, g) and self._inputs_ok(c, g):
                    g = self.merge(c, g)
        groups = {id(g): g for g in self.group_of.values()}
        return list(groups.values())

    def _inputs_ok(self, a: Group, b: Group) -> bool:
        return len(self._outside(a.ins | b.ins, a, b)) <= MAX_GROUP_INPUTS


def fusion(graph: Graph) -> Graph:
    grouper = _Grouper(graph)
    groups = grouper.run()
    users = graph.users()
    outputs = set(graph.outputs)
    replace: dict[Value, Value] = {}
    new_nodes: list[tuple[float, Node]] = []
    grouped = set()
    for g in groups:
        g.members.sort(key=grouper.pos.__getitem__)
        absorbed = any(grouper.source(v, g.shape) is not v for n in g.members for v in n.inputs)
        results = [n.out for n in g.members if n.out in outputs or _used_outside(n.out, g, users)]
        reduce_node = _epilogue_reduction(results, users)
        if len(g.members) == 1 and not absorbed and reduce_node is None:
            continue
        full = results
        if reduce_node is not None:
            reduced = reduce_node.inputs[0]
            full = [r for r in results if r is not reduced or r in outputs or len(users[r]) > 1]
            results = [*full, reduced]
        fused, outs = _build(g, results, grouper, reduce_node, len(full))
        grouped.update(g.member_set)
        last = grouper.pos[g.members[-1]]
        replace.update(zip(full, outs))
        if reduce_node is not None:
            grouped.add(reduce_node)
            replace[reduce_node.out] = outs[-1]
            last = grouper.pos[reduce_node]
        new_nodes.append((last, fused))
    kept = [(grouper.pos[n], n) for n in graph.nodes if n not in grouped]
    order = [n for _, n in sorted(kept + new_nodes, key=lambda t: t[0])]
    remapped = [Node(n.op, [replace.get(v, v) for v in n.inputs], n.attrs, n.outputs, n.loc) for n in order]
    nodes = topological_nodes(remapped, graph.inputs)
    return Graph(
        graph.name, graph.inputs, nodes, [replace.get(v, v) for v in graph.outputs], graph.input_info
    )


def _used_outside(v: Value, g: Group, users) -> bool:
    return any(u not in g.member_set for u in users.get(v, []))


def _epilogue_reduction(results, users) -> Node | None:
    """A sum/max reduction reading one of the group's results: it becomes part of the fused
    node, which then writes the reduced value (and the full result, if others read it too)."""
    for r in results:
        for u in users.get(r, []):
            if u.op in ("reduce_sum", "reduce_max"):
                return u
    return None


def _build(g: Group, results: list[Value], grouper: _Grouper, reduce_node: Node | None, unreduced: int):
    """The fused node for a group: region inputs are the group's external values."""
    from ..builder import Builder

    b = Builder("region")
    env: dict[Value, Value] = {}
    ext: list[Value] = []
    producers = grouper.producer
    for n in g.members:
        for v in n.inputs:
            if v in env:
                continue
            p = producers.get(v)
            if p is not None and p.op == "constant" and v.shape == ():
                env[v] = b.emit("constant", value=p.attrs["value"], loc=p.loc)
                continue
            src = grouper.source(v, g.shape)
            if p in g.member_set:
                continue
            ext.append(src)
            env[v] = b.input(TensorType((), v.dtype), f"in{len(ext) - 1}")
        inputs = [env[v] for v in n.inputs]
        env[n.out] = b.emit(n.op, *inputs, loc=n.loc, **n.attrs)
    region = b.finish([env[v] for v in results])
    attrs = {"region": region, "shape": g.shape}
    loc = g.members[-1].loc
    if reduce_node is not None:
        kind = reduce_node.op.removeprefix("reduce_")
        attrs.update(reduce=kind, axes=reduce_node.attrs["axes"], keepdims=reduce_node.attrs["keepdims"],
                     unreduced=unreduced)  # fmt: skip
        loc = reduce_node.loc
    from ..registry import normalize_attrs

    opdef = get_op("fused")
    attrs = normalize_attrs(opdef, attrs)
    types = opdef.infer([v.type for v in ext], attrs)
    outs = [Value(t) for t in types]
    return Node("fused", ext, attrs, outs, loc), outs
