"""What the report shows when a node is clicked: its op, types, attributes, source line and the
code each backend generates for it (the node compiled alone, so the lines are exactly its own)."""

from __future__ import annotations

from bpir.dot import Drawing
from bpir.ir import Graph, Node
from bpir.printer import format_attr

CODE_LIMIT = 2000  # nodes; past this a graph's per-node code is left out to keep the file small


def node_source(backend: str, node: Node, k: int) -> str:
    """Source the backend generates for ``node`` alone (numpy, numba, jax; else empty)."""
    from bpir.profiler import alone

    g = alone(node, k)
    if backend == "numpy":
        from bpir.backends.numpy.backend import generate

        return generate(g)[0]
    if backend == "numba":
        from bpir.backends.numba.backend import generate

        kernels, driver, _, _ = generate(g)
        return (kernels + "\n\n" if kernels else "") + driver
    if backend == "jax":
        from bpir.backends.jax.backend import generate

        return generate(g)[0]
    return ""


def _attrs(node: Node) -> dict[str, str]:
    out = {}
    for key, value in node.attrs.items():
        if isinstance(value, Graph):
            out[key] = str(value).strip()
        else:
            out[key] = format_attr(value)
    return out


def node_info(graph: Graph, d: Drawing, backends: list[str], times: dict[int, float] | None = None) -> dict:
    """By dot node id: the JSON the report's click handler displays."""
    with_code = len(graph.nodes) <= CODE_LIMIT
    code: dict[int, dict[str, str]] = {}
    info: dict[str, dict] = {}
    for ident, dn in d.nodes.items():
        if dn.kind == "input":
            v = graph.inputs[dn.index]
            meta = graph.input_info.get(dn.index)
            info[ident] = {"kind": "input", "name": v.name or str(dn.index), "type": str(v.type),
                           "role": meta.role if meta else "", "origin": meta.origin if meta else ""}  # fmt: skip
            continue
        if dn.kind in ("output", "summary"):
            info[ident] = {"kind": dn.kind, "label": dn.label}
            continue
        node = graph.nodes[dn.index]
        if with_code and dn.index not in code:
            code[dn.index] = {}
            for b in backends:
                try:
                    code[dn.index][b] = node_source(b, node, dn.index)
                except Exception as e:  # a backend that cannot lower this node alone says so
                    code[dn.index][b] = f"# not generated alone: {type(e).__name__}: {e}"
        item = {"kind": "op", "index": dn.index, "op": node.op, "types": [str(v.type) for v in node.outputs],
                "inputs": [str(v.type) for v in node.inputs], "loc": node.loc or "", "attrs": _attrs(node),
                "code": code.get(dn.index, {})}  # fmt: skip
        if dn.kind == "region" and dn.region_index >= 0:
            rn = node.attrs["region"].nodes[dn.region_index]
            item["region_op"] = rn.op
            item["region_loc"] = rn.loc or ""
        if times and dn.index in times:
            item["time_ms"] = times[dn.index] * 1e3
        info[ident] = item
    return info
