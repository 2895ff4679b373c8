"""Bytes live after each node under the memory plan (the series whose maximum is the plan's peak)."""

from __future__ import annotations

from bpir.ir import Graph
from bpir.passes import memory


def live_bytes(graph: Graph) -> list[int]:
    """Owned buffers live while node i runs (its outputs allocated, inputs not yet freed), as
    ``passes.memory`` accounts them: graph inputs excluded, in-place results free."""
    return memory.live_bytes(graph, memory.plan(graph))
