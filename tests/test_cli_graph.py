"""``bpir graph``: SVG/PNG/dot pictures of a user's model at each stage, and ``Graph.to_dot``."""

from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from cli_run import bpir, model

import bpir as bp
from bpir.dot import drawing

needs_dot = pytest.mark.skipif(
    shutil.which("dot") is None, reason="Graphviz's dot is not installed (apt-get install graphviz)"
)
SVG = "{http://www.w3.org/2000/svg}"


def svg_nodes(path) -> list[str]:
    """The dot ids of the drawn nodes (``<g class="node"><title>id</title>``)."""
    root = ET.parse(path).getroot()
    return [g.find(f"{SVG}title").text for g in root.iter(f"{SVG}g") if g.get("class") == "node"]


def expected_boxes(graph) -> int:
    """Inputs + outputs + one box per op, fused regions expanded (+ one per reduced output)."""
    n = len(graph.inputs) + len(graph.outputs)
    for node in graph.nodes:
        if node.op == "fused":
            a = node.attrs
            n += len(a["region"].nodes) + (len(node.outputs) - a["unreduced"] if a["reduce"] else 0)
        else:
            n += 1
    return n


@needs_dot
def test_svg_of_each_stage_has_every_node(tmp_path):
    mlp = model("mlp:loss")
    for stage in ("traced", "backward", "optimized"):
        out = tmp_path / f"{stage}.svg"
        bpir("graph", mlp, "--stage", stage, "-o", str(out))
        graph = bp.parse(bpir("show", mlp, "--stage", stage).stdout)
        ids = svg_nodes(out)
        assert len(ids) == expected_boxes(graph), stage
        text = out.read_text()
        assert "mlp.py:" in text  # node labels carry the source line
        if stage == "backward":
            assert "residual %r0" in text and "cotangent %" in text
        if stage == "optimized":
            assert "fused #" in text and any("_" in i for i in ids)  # clusters of region ops


@needs_dot
def test_png_decodes_and_large_graphs_are_cut(tmp_path):
    from PIL import Image

    out = tmp_path / "cnn.png"
    bpir("graph", model("cnn:loss"), "--stage", "backward", "-o", str(out))
    with Image.open(out) as im:
        im.load()
        assert im.size[0] > 100 and im.size[1] > 100
    cut = tmp_path / "gru.svg"
    done = bpir("graph", model("gru:loss"), "--stage", "traced", "--max-nodes", "10", "-o", str(cut))
    assert "10 op boxes drawn" in done.stderr
    ids = svg_nodes(cut)
    assert "rest" in ids and sum(i.startswith("n") for i in ids) == 10
    assert "more nodes (#10 on)" in cut.read_text()


def test_without_dot_the_dot_file_is_written(tmp_path):
    out = tmp_path / "g.svg"
    done = bpir("graph", model("mlp:loss"), "-o", str(out), env={"PATH": str(tmp_path)})
    assert not out.exists()
    dot_file = tmp_path / "g.dot"
    assert dot_file.read_text().startswith('digraph "loss"')
    assert f"dot -Tsvg {dot_file} -o {out}" in done.stderr


def test_to_dot_shows_fused_ops_and_high_fanout_copies():
    x = np.ones((4, 4), np.float32)

    def f(x, w):
        for _ in range(8):
            x = np.tanh(x @ w) * 0.5 + x
        return x.sum()

    g = bp.optimize(bp.trace(f, x, x))
    text = g.to_dot()
    assert text == drawing(g).text
    assert "subgraph cluster_n1" in text and '"tanh\\n' in text  # the region's ops, in their cluster
    d = drawing(g, collapse=True)
    assert any(n.label.startswith("fused [tanh, mul, add]") for n in d.nodes.values())
    # w is read by 8 matmuls: drawn once per reader, not as 8 long edges from one box
    assert sum(i.startswith("in1_use") for i in d.nodes) == 8
