"""Memory planning, an analysis over ``bpir.lifetimes``: in-place buffer reuse and a
peak-memory / bytes-moved report.

Backends ask ``plan(graph)`` which node may write its result into a dying input's buffer."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..ir import Graph, Value
from ..lifetimes import VIEW_OPS, buffer_ends, lifetimes  # VIEW_OPS: also imported from here
from ..registry import Kind, get_op


@dataclass
class MemoryPlan:
    inplace: dict[int, Value] = field(default_factory=dict)  # node index -> input to overwrite
    last_use: dict[Value, int] = field(default_factory=dict)
    base: dict[Value, Value] = field(default_factory=dict)  # value -> buffer it lives in
    peak_bytes: int = 0
    bytes_moved: int = 0


def plan(graph: Graph, inplace_ops: set[str] | None = None) -> MemoryPlan:
    """In-place reuse: an elementwise node may write into an input whose buffer (and every
    view of it) dies at that node, if types match and the buffer is owned by the graph."""
    life = lifetimes(graph)
    p = MemoryPlan(last_use=life.last_use, base=dict(life.base))
    buffer_end = dict(life.end)
    mine = owned(graph)
    taken: set[Value] = set()
    for i, node in enumerate(graph.nodes):
        op = get_op(node.op)
        pointwise = op.kind is Kind.ELEMENTWISE or (op.kind is Kind.FUSED and not node.attrs["reduce"])
        allowed = pointwise if inplace_ops is None else node.op in inplace_ops
        if not allowed or len(node.outputs) != 1:
            continue
        out = node.out
        for v in node.inputs:
            if (v in mine and v not in taken and v.type == out.type and out.shape != ()
                    and buffer_end[v] == i):  # fmt: skip
                p.inplace[i] = v
                taken.add(v)
                # the output now lives in v's buffer until the output dies
                p.base[out] = v
                buffer_end[v] = max(buffer_end[v], p.last_use.get(out, -1))
                break
    p.peak_bytes = max([0, *live_bytes(graph, p)])
    p.bytes_moved = sum(
        sum(v.type.nbytes for v in n.inputs + n.outputs) for n in graph.nodes if n.op not in VIEW_OPS
    )
    return p


def owned(graph: Graph) -> set[Value]:
    """The values whose buffers the graph allocates (not its inputs, views or constants)."""
    return {v for n in graph.nodes if n.op not in VIEW_OPS | {"constant"} for v in n.outputs}


def live_bytes(graph: Graph, p: MemoryPlan) -> list[int]:
    """Bytes of owned buffers live while node i runs under plan ``p`` (its outputs allocated,
    inputs not yet freed; graph inputs excluded, an in-place result allocates nothing)."""
    mine = owned(graph)
    ends = buffer_ends(p.base, p.last_use)
    frees: dict[int, int] = {}
    for b in mine:
        frees[ends.get(b, -1)] = frees.get(ends.get(b, -1), 0) + b.type.nbytes
    live, series = 0, []
    for i, node in enumerate(graph.nodes):
        if i not in p.inplace:
            live += sum(v.type.nbytes for v in node.outputs if v in mine)
        series.append(live)
        live -= frees.get(i, 0)
    return series


def report(graph: Graph) -> dict[str, int]:
    p = plan(graph)
    return {"nodes": len(graph.nodes), "peak_bytes": p.peak_bytes, "bytes_moved": p.bytes_moved,
            "inplace": len(p.inplace)}  # fmt: skip
