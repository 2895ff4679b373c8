"""Graphviz pictures of a graph: fused regions as clusters of their ops, edges labelled with
types, residual and cotangent inputs marked, the user's source line on every node.

Large graphs stay readable: ``collapse=True`` draws each fused region as one node listing its
ops, and ``max_nodes`` keeps the first nodes in program order and summarises the rest."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections import Counter
from dataclasses import dataclass, field

from .ir import Graph, Node, Value

FANOUT = 6  # a value read by more nodes is drawn once per reader: long edges make dot's layout quadratic
ROLE_STYLE = {
    "residual": 'shape=box, style="rounded,filled", fillcolor="#ffe0b2"',
    "cotangent": 'shape=box, style="rounded,filled", fillcolor="#d0e4ff"',
    "": 'shape=box, style="rounded,filled", fillcolor="#eeeeee"',
}


@dataclass
class DotNode:
    """What a drawn node stands for: a graph input, an op (or a region op), an output or a summary."""

    kind: str  # "input", "op", "region", "output", "summary"
    index: int  # input/output position, or node index in graph.nodes
    label: str
    region_index: int = -1


@dataclass
class Drawing:
    """The dot text and, by dot node id, what each drawn node stands for."""

    text: str
    nodes: dict[str, DotNode] = field(default_factory=dict)


def _q(text: str) -> str:
    """A dot double-quoted string (JSON escaping is a subset dot reads back)."""
    return json.dumps(str(text))


def _fused_summary(node: Node, limit: int = 6) -> str:
    ops = [n.op for n in node.attrs["region"].nodes if n.op != "constant"]
    shown = ", ".join(ops[:limit]) + (f", +{len(ops) - limit}" if len(ops) > limit else "")
    red = node.attrs["reduce"]
    return f"fused [{shown}]" + (f" then reduce_{red} {node.attrs['axes']}" if red else "")


class _Writer:
    def __init__(self, graph: Graph, node_attrs: dict[int, str] | None):
        self.graph = graph
        self.lines = [f"digraph {_q(graph.name)} {{", "  rankdir=TB;",
                      '  node [shape=box, fontname="monospace", fontsize=10];',
                      '  edge [fontname="monospace", fontsize=8];']  # fmt: skip
        self.nodes: dict[str, DotNode] = {}
        self.src: dict[Value, str] = {}
        self.extra = node_attrs or {}
        self.uses = Counter(v for n in graph.nodes for v in n.inputs)
        self.copies = 0

    def node(self, ident: str, info: DotNode, style: str = "", indent: str = "  ") -> None:
        self.nodes[ident] = info
        attrs = f"label={_q(info.label)}" + (f", {style}" if style else "")
        self.lines.append(f"{indent}{ident} [{attrs}];")

    def use(self, v: Value, b: str) -> None:
        """An edge from ``v``'s producer to ``b``; a value with many readers gets a copy per reader."""
        a = self.src[v]
        if self.uses[v] > FANOUT:
            self.copies += 1
            first = self.nodes[a]
            ident = f"{a}_use{self.copies}"
            name = f"%{v.name}" if v.name else f"{first.label.splitlines()[0]} (#{first.index})"
            self.node(ident, DotNode(first.kind, first.index, f"{name}\n{v.type}", first.region_index),
                      'style="dashed,rounded", fontsize=8')  # fmt: skip
            a = ident
        self.edge(a, b, str(v.type))

    def edge(self, a: str, b: str, label: str, style: str = "", indent: str = "  ") -> None:
        self.lines.append(f"{indent}{a} -> {b} [label={_q(label)}{', ' + style if style else ''}];")

    def inputs(self, keep: set[Value] | None = None) -> None:
        for i, v in enumerate(self.graph.inputs):
            if keep is not None and v not in keep:
                continue
            info = self.graph.input_info.get(i)
            role = info.role if info else ""
            label = f"{role + ' ' if role else ''}%{v.name or i}\n{v.type}"
            if info and info.origin:
                label += f"\nfrom {info.origin}"
            self.node(f"in{i}", DotNode("input", i, label), ROLE_STYLE.get(role, ROLE_STYLE[""]))
            self.src[v] = f"in{i}"

    def op(self, k: int, node: Node, collapse: bool) -> None:
        loc = f"\n{node.loc}" if node.loc else ""
        types = ", ".join(str(v.type) for v in node.outputs)
        style = self.extra.get(k, "")
        if node.op == "fused" and not collapse:
            self.fused(k, node, loc, style)
            return
        label = (_fused_summary(node) if node.op == "fused" else node.op) + f"\n{types}{loc}"
        self.node(f"n{k}", DotNode("op", k, label), style)
        for v in node.inputs:
            if v in self.src:
                self.use(v, f"n{k}")
        for v in node.outputs:
            self.src[v] = f"n{k}"

    def fused(self, k: int, node: Node, loc: str, style: str) -> None:
        """A cluster holding the region's ops; outer edges go straight to the ops that read them."""
        region, a = node.attrs["region"], node.attrs
        title = f"fused #{k} over {a['shape']}" + (
            f", reduce_{a['reduce']} {a['axes']}" if a["reduce"] else ""
        )
        self.lines += [f"  subgraph cluster_n{k} {{", f"    label={_q(title + loc)};",
                       '    style="rounded,filled"; fillcolor="#f4f8ec"; fontname="monospace"; fontsize=9;']  # fmt: skip
        later: list[tuple] = []  # edges drawn after the cluster: an edge inside one pulls its ends in
        inner: dict[Value, tuple[str, str]] = {}  # region value -> (dot id, type on its edge)
        outer = {rv: ov for rv, ov in zip(region.inputs, node.inputs) if ov in self.src}
        dtype_shape = lambda v: f"{v.dtype}[{','.join(map(str, a['shape']))}]"  # noqa: E731

        def read(rv, ident):
            if rv in outer:
                later.append((outer[rv], ident))
            elif rv in inner:
                later.append((*inner[rv], ident))

        for j, rn in enumerate(region.nodes):
            ident = f"n{k}_{j}"
            rloc = f"\n{rn.loc}" if rn.loc else ""
            label = rn.op if rn.op != "constant" else f"constant {rn.attrs['value'].item()!r}"
            self.node(ident, DotNode("region", k, label + rloc, j), style, indent="    ")
            for rv in rn.inputs:
                read(rv, ident)
            for rv in rn.outputs:
                inner[rv] = (ident, dtype_shape(rv))
        for j, (rv, ov) in enumerate(zip(region.outputs, node.outputs)):
            if a["reduce"] and j >= a["unreduced"]:
                ident = f"n{k}_r{j}"
                self.node(ident, DotNode("region", k, f"reduce_{a['reduce']} {a['axes']}\n{ov.type}", -1 - j),
                          style, indent="    ")  # fmt: skip
                read(rv, ident)
                self.src[ov] = ident
            elif rv in inner:
                self.src[ov] = inner[rv][0]
            elif rv in outer:  # a region output that is one of its inputs
                self.src[ov] = self.src[outer[rv]]
        self.lines.append("  }")
        for e in later:
            if len(e) == 2:
                self.use(*e)
            else:
                self.edge(e[0], e[2], e[1])

    def outputs(self, cut: bool = False) -> None:
        for i, v in enumerate(self.graph.outputs):
            if cut and v not in self.src:
                continue
            self.node(
                f"out{i}",
                DotNode("output", i, f"return {i}\n{v.type}"),
                'shape=oval, style="filled", fillcolor="#e0f0e0"',
            )
            if v in self.src:
                self.edge(self.src[v], f"out{i}", str(v.type))

    def summary(self, cut: list[Node], first: int) -> None:
        counts = Counter(n.op for n in cut)
        ops = ", ".join(f"{op} x{c}" for op, c in counts.most_common(8))
        hidden_in = sum(v not in self.src for v in self.graph.inputs)
        hidden_out = sum(v not in self.src for v in self.graph.outputs)
        label = (f"... {len(cut)} more nodes (#{first} on), {hidden_in} inputs and {hidden_out} outputs "
                 f"not drawn\n{ops}")  # fmt: skip
        self.node("rest", DotNode("summary", first, label), 'shape=note, style="filled", fillcolor="#fff6cc"')
        reads = {v for n in cut for v in n.inputs if v in self.src}
        for v in sorted(reads, key=lambda v: v.uid):
            self.edge(self.src[v], "rest", str(v.type), "style=dashed")


def drawing(graph: Graph, *, collapse: bool = False, max_nodes: int | None = None,
            node_attrs: dict[int, str] | None = None) -> Drawing:  # fmt: skip
    """Dot source of ``graph``; ``node_attrs`` adds dot attributes to node k (e.g. a fill colour)."""
    w = _Writer(graph, node_attrs)
    drawn = graph.nodes
    if max_nodes is not None and len(graph.nodes) > max_nodes:
        collapse = True
        drawn = graph.nodes[:max_nodes]
    elif max_nodes is not None and not collapse:
        size = sum(len(n.attrs["region"].nodes) + 1 if n.op == "fused" else 1 for n in graph.nodes)
        collapse = size > max_nodes
    cut = len(drawn) < len(graph.nodes)
    w.inputs({v for n in drawn for v in n.inputs} if cut else None)
    for k, node in enumerate(drawn):
        w.op(k, node, collapse)
    if cut:
        w.summary(graph.nodes[len(drawn) :], len(drawn))
    w.outputs(cut)
    w.lines.append("}")
    return Drawing("\n".join(w.lines) + "\n", w.nodes)


def to_dot(graph: Graph, **options) -> str:
    """Graphviz source for ``graph`` (see ``drawing`` for the options)."""
    return drawing(graph, **options).text


def render(dot_text: str, fmt: str, timeout: float = 300) -> bytes:
    """Run Graphviz's ``dot -T fmt`` (svg, png, ...); FileNotFoundError when ``dot`` is not on PATH."""
    exe = shutil.which("dot")
    if exe is None:
        raise FileNotFoundError("Graphviz's dot is not on PATH")
    done = subprocess.run([exe, f"-T{fmt}"], input=dot_text.encode(), capture_output=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"dot failed: {done.stderr.decode(errors='replace').strip()[:400]}")
    return done.stdout
