"""Benchmark a user's model across backends: cold compile (fresh process, empty cache), disk-cache
load (a second process), warm call median and spread (round-robin, asynchronous results waited
for), the memory plan's peak; a backend whose outputs disagree with the numpy backend's is not
timed."""

from __future__ import annotations

import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, field

import numpy as np

from .machine import machine_info
from .timing import block, interleaved_times

SCHEMA = "bpir-bench/1"
# |backend - numpy| / max |numpy| per output leaf: summation order (BLAS, XLA) moves results
# by a few ulps of the largest value, times the depth of the model
TOLERANCE = {"float64": 1e-9, "float32": 1e-4, "float16": 1e-2}


@dataclass
class BackendResult:
    backend: str
    status: str = "ok"  # "ok" or "refused"
    max_rel_diff: float = 0.0
    worst_output: str = ""
    cold_compile_s: float | None = None
    cache_load_s: float | None = None
    median_s: float | None = None
    p25_s: float | None = None
    p75_s: float | None = None
    min_s: float | None = None
    ratio_to_fastest: float | None = None
    plan_peak_bytes: int = 0
    times_s: list[float] = field(default_factory=list)


def disagreement(want, got) -> tuple[float, str, float]:
    """(worst |got - want| / max |want| over the output leaves, that leaf's path, its tolerance)."""
    from bpir.pytree import flatten, leaf_paths

    wl, tree = flatten(want)
    gl, _ = flatten(got)
    worst, where, tol = 0.0, "", 0.0
    for path, a, b in zip(leaf_paths(tree, "out"), wl, gl):
        a, b = np.asarray(a), np.asarray(b)
        if a.shape != b.shape:
            return math.inf, f"{path} (shape {b.shape} vs {a.shape})", 0.0
        if a.dtype.kind not in "fc":
            d = float(np.any(a != b))
            t = 0.0
        else:
            scale = float(np.max(np.abs(a), initial=0.0)) or 1.0
            d = float(np.max(np.abs(a.astype(np.float64) - b), initial=0.0)) / scale
            d = math.inf if not np.isfinite(d) else d
            t = TOLERANCE.get(a.dtype.name, 1e-4)
        if d - t > worst - tol or not where:
            worst, where, tol = d, path, t
    return worst, where, tol


def cold_times(file: str, fn: str, example: str, backend: str) -> tuple[float, float]:
    """(compile + first call in a fresh process with an empty cache, the same in a second
    process reading the disk cache the first wrote), imports excluded."""
    out = []
    with tempfile.TemporaryDirectory(prefix="bpir_bench_cache_") as cache:
        env = {**os.environ, "BPIR_CACHE_DIR": cache}
        for _ in range(2):
            done = subprocess.run([sys.executable, "-m", "bpir.bench.cold", file, fn, example, backend],
                                  env=env, capture_output=True, text=True, timeout=900)  # fmt: skip
            if done.returncode != 0:
                raise RuntimeError(
                    f"compile in a fresh process failed ({backend}): {done.stderr.strip()[-400:]}"
                )
            out.append(json.loads(done.stdout.strip().splitlines()[-1])["compile_s"])
    return out[0], out[1]


def _device_args(backend: str, args: tuple) -> tuple:
    """jax: the arguments on the device once, as a training loop keeps them."""
    if backend != "jax":
        return args
    import jax

    with jax.enable_x64(True):
        return tuple(jax.device_put(args))


def bench(model, backends: list[str], repeat: int = 30, cold: bool = True) -> dict:
    """Time ``model`` (a ``bpir.cli.model.Model``) on each backend; returns the JSON-able result."""
    import bpir
    from bpir.passes import memory

    ref = bpir.compile(model.fn, backend="numpy", example_args=model.args)
    want = ref(*model.args)
    results, calls = [], []
    for b in backends:
        r = BackendResult(b)
        f = ref if b == "numpy" else bpir.compile(model.fn, backend=b, example_args=model.args)
        r.max_rel_diff, r.worst_output, tol = disagreement(want, f(*model.args))
        r.plan_peak_bytes = memory.report(f.graph)["peak_bytes"]
        if r.max_rel_diff > tol:
            r.status = "refused"
        else:
            args = _device_args(b, model.args)
            block(f(*args))
            calls.append((r, lambda f=f, args=args: f(*args)))
        results.append(r)
    rounds = max(2, math.ceil(repeat / 5))
    per_round = max(1, math.ceil(repeat / rounds))
    times = interleaved_times([c for _, c in calls], rounds, per_round, budget_s=120.0) if calls else []
    for (r, _), ts in zip(calls, times):
        q = statistics.quantiles(ts, n=4) if len(ts) > 1 else [ts[0]] * 3
        r.times_s, r.median_s, r.p25_s, r.p75_s, r.min_s = ts, statistics.median(ts), q[0], q[2], min(ts)
    timed = [r for r in results if r.median_s is not None]
    fastest = min((r.median_s for r in timed), default=None)
    for r in timed:
        r.ratio_to_fastest = r.median_s / fastest
    if cold:
        file, fn = model.spec.rsplit(":", 1)
        for r in timed:
            r.cold_compile_s, r.cache_load_s = cold_times(os.path.abspath(file), fn, model.example, r.backend)
    return {"schema": SCHEMA, "model": model.spec, "repeat": repeat, "machine": machine_info(),
            "reference": "numpy", "backends": [asdict(r) for r in results]}  # fmt: skip


def plot(result: dict, path: str) -> None:
    """A bar chart of the warm medians (error bars: interquartile range) with matplotlib."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in result["backends"] if r["median_s"] is not None]
    names = [r["backend"] for r in rows]
    med = [r["median_s"] * 1e3 for r in rows]
    err = [
        [(r["median_s"] - r["p25_s"]) * 1e3 for r in rows],
        [(r["p75_s"] - r["median_s"]) * 1e3 for r in rows],
    ]
    fig, ax = plt.subplots(figsize=(1.6 + 1.2 * len(rows), 3.6))
    bars = ax.bar(names, med, yerr=err, capsize=4, color="#4c78a8")
    for bar, r in zip(bars, rows):
        ax.annotate(f"{r['ratio_to_fastest']:.2f}x", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                    ha="center", va="bottom", fontsize=8, xytext=(0, 3), textcoords="offset points")  # fmt: skip
    ax.set_ylabel("warm call, median ms")
    ax.set_title(f"{result['model']}\n{result['machine']['cpu']}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
