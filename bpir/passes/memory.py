"""Memory planning: liveness, in-place buffer reuse, and a peak-memory / bytes-moved report.

Backends ask ``plan(graph)`` which node may write its result into a dying input's buffer."""

from __future__ import annotations

from dataclasses import dataclass, field

from .. import ops  # noqa: F401  (registers the op set: VIEW_OPS is read from it)
from ..ir import Graph, Value
from ..registry import OPS, Kind, get_op

# ops whose result may be a strided view of their input, as the registry declares (``OpDef.view``)
VIEW_OPS = frozenset(name for name, op in OPS.items() if op.view)


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
    p = MemoryPlan()
    end = len(graph.nodes)
    for v in graph.inputs:
        p.base[v] = v
    for i, node in enumerate(graph.nodes):
        for v in node.inputs:
            p.last_use[v] = i
        for v in node.outputs:
            p.base[v] = p.base[node.inputs[0]] if node.op in VIEW_OPS else v
    for v in graph.outputs:
        p.last_use[v] = end
    buffer_end: dict[Value, int] = {}
    for v, b in p.base.items():
        buffer_end[b] = max(buffer_end.get(b, -1), p.last_use.get(v, -1))
    owned = {v for n in graph.nodes if n.op not in VIEW_OPS | {"constant"} for v in n.outputs}
    taken: set[Value] = set()
    for i, node in enumerate(graph.nodes):
        op = get_op(node.op)
        pointwise = op.kind is Kind.ELEMENTWISE or (op.kind is Kind.FUSED and not node.attrs["reduce"])
        allowed = pointwise if inplace_ops is None else node.op in inplace_ops
        if not allowed or len(node.outputs) != 1:
            continue
        out = node.out
        for v in node.inputs:
            if (v in owned and v not in taken and v.type == out.type and out.shape != ()
                    and buffer_end[v] == i):  # fmt: skip
                p.inplace[i] = v
                taken.add(v)
                # the output now lives in v's buffer until the output dies
                p.base[out] = v
                buffer_end[v] = max(buffer_end[v], p.last_use.get(out, -1))
                break
    _account(graph, p, owned)
    return p


def _account(graph: Graph, p: MemoryPlan, owned: set[Value]) -> None:
    """Peak bytes of live owned buffers (inputs excluded) and bytes read + written per node."""
    ends: dict[Value, int] = {}
    for v, b in p.base.items():
        ends[b] = max(ends.get(b, -1), p.last_use.get(v, -1))
    live, peak = 0, 0
    frees: dict[int, int] = {}
    for b in owned:
        frees[ends.get(b, -1)] = frees.get(ends.get(b, -1), 0) + b.type.nbytes
    for i, node in enumerate(graph.nodes):
        if i not in p.inplace:
            live += sum(v.type.nbytes for v in node.outputs if v in owned)
        peak = max(peak, live)
        live -= frees.get(i, 0)
        if node.op not in VIEW_OPS:
            p.bytes_moved += sum(v.type.nbytes for v in node.inputs + node.outputs)
    p.peak_bytes = peak


def report(graph: Graph) -> dict[str, int]:
    p = plan(graph)
    return {"nodes": len(graph.nodes), "peak_bytes": p.peak_bytes, "bytes_moved": p.bytes_moved,
            "inplace": len(p.inplace)}  # fmt: skip
