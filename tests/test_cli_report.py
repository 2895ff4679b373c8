"""``bpir report``: one self-contained HTML page, loaded in a real headless Chromium."""

from __future__ import annotations

import re
import shutil
import subprocess

import numpy as np
import pytest
from cli_run import bpir, model

import bpir as bp
from bpir.passes import memory
from bpir.report.memory import live_bytes

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_browser = pytest.mark.skipif(CHROMIUM is None or shutil.which("dot") is None,
                                   reason="needs Debian's chromium and graphviz (installed by .ci/run)")  # fmt: skip


def chromium(*argv: str) -> subprocess.CompletedProcess:
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        "--enable-logging=stderr",
        "--v=0",
    ]
    return subprocess.run([CHROMIUM, *flags, *argv], capture_output=True, text=True, timeout=180)


@needs_browser
def test_report_loads_in_chromium_with_clickable_graphs(tmp_path):
    from PIL import Image

    out = tmp_path / "report.html"
    bpir("report", model("mlp:loss"), "-o", str(out), "--backends", "numpy,jax", "--bench", "--no-cold",
         "--repeat", "3", "--profile")  # fmt: skip
    html = out.read_text()
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)  # nothing fetched at view time
    url = out.as_uri() + "#selftest"  # the page clicks the second node of each graph itself
    dumped = chromium("--dump-dom", url)
    body = re.search(r"<body[^>]*>", dumped.stdout).group(0)
    assert 'data-ready="1"' in body and "data-errors" not in body, body
    assert 'data-selftest="3/3 optimized:' in body, body  # each graph's click filled the node panel
    for key in ("traced", "backward", "optimized"):
        div = re.search(rf'<div class="bpir-graph" data-graph="{key}" data-nodes="(\d+)"', dumped.stdout)
        assert div and int(div.group(1)) > 5, key
    for section in ('id="memory-chart"', 'id="bench-table"', 'id="bench-chart"', 'id="profile-table"',
                    "numpy code for this node"):  # fmt: skip
        assert section in dumped.stdout, section
    assert ":CONSOLE" not in dumped.stderr, dumped.stderr  # no console message, error or not
    shot = tmp_path / "shot.png"
    chromium(f"--screenshot={shot}", "--window-size=1280,1600", out.as_uri())
    with Image.open(shot) as im:
        pixels = np.asarray(im.convert("L"))
    assert pixels.shape == (1600, 1280) and pixels.std() > 10  # something was drawn


def test_memory_timeline_peaks_at_the_plans_peak():
    from bpir.demo.models import init_mlp, mlp_batch, sgd_step

    sizes = [8, 16, 4]
    g = bp.optimize(bp.trace(sgd_step, init_mlp(sizes), *mlp_batch(sizes, 6)))
    series = live_bytes(g)
    assert len(series) == len(g.nodes) and max(series) == memory.report(g)["peak_bytes"] > 0
