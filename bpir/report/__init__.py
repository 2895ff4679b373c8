"""``bpir report``: one self-contained HTML page about a model — the forward, backward and
optimized graphs as clickable SVG, the pass report, a memory timeline, each backend's source,
and optionally a benchmark and per-node profile (node colours by time)."""

from __future__ import annotations

import datetime
import re
from html import escape

from bpir.ir import Graph

from . import charts, page
from .memory import live_bytes
from .nodes import node_info

STAGES = (
    ("traced", "Forward graph (traced)"),
    ("backward", "Backward graph"),
    ("optimized", "Optimized graph"),
)


def _svg(dot_text: str) -> str:
    """Graphviz's SVG without its XML prolog, ready to inline; or the dot text when dot is missing."""
    from bpir.dot import render

    try:
        svg = render(dot_text, "svg").decode()
    except FileNotFoundError:
        return ('<p class="note">Graphviz\'s <code>dot</code> is not installed here; the graph\'s dot source '
                "follows (render it with <code>dot -Tsvg</code>).</p>" + page.pre(dot_text))  # fmt: skip
    return re.sub(r"^.*?(?=<svg)", "", svg, flags=re.S)


def _heat(times: dict[int, float]) -> dict[int, str]:
    """Dot fill colours from white (fast) to red (the slowest node)."""
    top = max(times.values(), default=0.0) or 1.0
    out = {}
    for k, t in times.items():
        f = t / top
        g = int(255 - 170 * f)
        out[k] = f'style="filled", fillcolor="#ff{g:02x}{g:02x}", tooltip="{t * 1e3:.4f} ms"'
    return out


def _graph_section(key: str, graph: Graph, backends: list[str], times=None, max_nodes: int = 400):
    from bpir.dot import drawing

    d = drawing(graph, max_nodes=max_nodes, node_attrs=_heat(times) if times else None)
    body = f'<div class="bpir-graph" data-graph="{key}">{_svg(d.text)}</div>'
    body += (
        f'<p class="note">{len(graph.nodes)} nodes, {len(graph.inputs)} inputs, {len(graph.outputs)} outputs'
    )
    body += "; colour: time per node (profile)</p>" if times else "</p>"
    return body, node_info(graph, d, backends, times)


def _bench_section(result: dict) -> str:
    from bpir.cli.bench import format_bytes

    rows = []
    for r in result["backends"]:
        f = lambda s, k=1e3: "-" if s is None else f"{s * k:.3f}"  # noqa: E731
        rows.append([r["backend"], r["status"], f(r["cold_compile_s"], 1), f(r["cache_load_s"], 1), f(r["median_s"]),
                     f"{f(r['p25_s'])}-{f(r['p75_s'])}",
                     "-" if r["ratio_to_fastest"] is None else f"{r['ratio_to_fastest']:.2f}x",
                     format_bytes(r["plan_peak_bytes"]), f"{r['max_rel_diff']:.1e}"])  # fmt: skip
    head = ["backend", "status", "cold compile s", "disk cache s", "warm median ms", "IQR ms", "vs fastest",
            "plan peak", "diff vs numpy"]  # fmt: skip
    m = result["machine"]
    note = f'<p class="note">{escape(m["cpu"])}, {m["usable_cores"]} cores usable; {escape(str(m["versions"]))}</p>'
    return page.table(head, rows, "bench-table") + charts.bench_bars(result["backends"]) + note


def build(model, backends: list[str], bench: bool = False, profile: bool = False, cold: bool = True,
          repeat: int = 20, remat: bool = False) -> str:  # fmt: skip
    """The report's HTML for a ``bpir.cli.model.Model``."""
    import bpir
    from bpir.cli import model as m
    from bpir.passes import manager, memory

    traced = m.trace(model).graph
    backward = m.backward(model, remat=remat)[1]
    compiled = {b: m.compile_model(model, b) for b in backends}
    optimized = compiled[backends[0]].graph
    passes = manager.PassReport()
    m.user_call(model, "optimizing", manager.optimize, traced, report=passes)
    pass_report = str(passes)
    times = None
    sections, data = [], {}
    if profile:
        prof = m.user_call(model, "profiling", bpir.profile, model.fn, *model.args, backend=backends[0])
        times = prof.by_index()
        rows = [[str(r.index), r.label, f"{r.seconds * 1e3:.4f}", f"{r.share:.1%}", f"{r.bytes_moved:,}",
                 f"{r.gbytes_per_s:.2f}", r.loc] for r in prof.top(15)]  # fmt: skip
        prof_html = (f'<p>{escape(prof.backend)}: whole step {prof.step_seconds * 1e3:.3f} ms; copy bandwidth '
                     f"{prof.bandwidth_gbs:.1f} GB/s</p>"
                     + page.table(["#", "node", "ms", "share", "bytes", "GB/s", "source"], rows, "profile-table")
                     + f'<p class="note">{escape(prof.note)}</p>')  # fmt: skip
    for key, title in STAGES:
        graph = {"traced": traced, "backward": backward, "optimized": optimized}[key]
        body, data[key] = _graph_section(key, graph, backends if key == "optimized" else ["numpy"],
                                         times if key == "optimized" else None)  # fmt: skip
        sections.append((key, title, body))
    mem = memory.report(optimized)
    sections.append(("passes", "Pass report", page.pre(pass_report) + page.pre(
        "memory plan: " + ", ".join(f"{k} {v:,}" for k, v in mem.items()))))  # fmt: skip
    labels = [f"{n.op} {n.loc or ''}".strip() for n in optimized.nodes]
    sections.append(("memory", "Memory timeline (optimized graph, bytes live per node)",
                     charts.memory_timeline(live_bytes(optimized), labels)))  # fmt: skip
    if profile:
        sections.append(("profile", "Profile (time per node)", prof_html))
    if bench:
        from bpir.bench.user import bench as run_bench

        result = m.user_call(model, "benchmarking", run_bench, model, backends, repeat, cold=cold)
        sections.append(("bench", "Benchmark", _bench_section(result)))
    src = "".join(f"<details{' open' if i == 0 else ''}><summary>{escape(b)}</summary>{page.pre(f.source)}</details>"
                  for i, (b, f) in enumerate(compiled.items()))  # fmt: skip
    sections.append(("source", "Generated source per backend", src))
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return page.page(f"bpir report: {model.spec}", f"bpir {bpir.__version__}, {when}, backends {', '.join(backends)}",
                     sections, data)  # fmt: skip
