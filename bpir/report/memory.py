"""Bytes live after each node under the memory plan (the series whose maximum is the plan's peak)."""

from __future__ import annotations

from bpir.ir import Graph
from bpir.passes.memory import VIEW_OPS, plan


def live_bytes(graph: Graph) -> list[int]:
    """Owned buffers live while node i runs (its outputs allocated, inputs not yet freed), as
    ``passes.memory`` accounts them: graph inputs excluded, in-place results free."""
    p = plan(graph)
    owned = {v for n in graph.nodes if n.op not in VIEW_OPS | {"constant"} for v in n.outputs}
    ends: dict = {}
    for v, b in p.base.items():
        ends[b] = max(ends.get(b, -1), p.last_use.get(v, -1))
    frees: dict[int, int] = {}
    for b in owned:
        frees[ends.get(b, -1)] = frees.get(ends.get(b, -1), 0) + b.type.nbytes
    live, series = 0, []
    for i, node in enumerate(graph.nodes):
        if i not in p.inplace:
            live += sum(v.type.nbytes for v in node.outputs if v in owned)
        series.append(live)
        live -= frees.get(i, 0)
    return series
