"""How the optimizer scales: time the default pipeline (and fusion alone) on synthetic graphs of
1k, 10k and 100k nodes, and print per-pass times and the growth ratio per 10x nodes. Two
shapes: ``residual`` is shaped like deep networks (matmul, bias, activation, residual adds,
reductions); ``chain`` is one long elementwise chain ``x = tanh(x * 1.0001 + 0.001)`` that
fuses into a single group (the shape on which fusion used to be quadratic).

    python -m examples.bench_passes [--sizes 1000,10000,100000] [--shape residual|chain|both]"""

from __future__ import annotations

import argparse
import time

import numpy as np

from bpir.builder import Builder
from bpir.ir import Graph
from bpir.passes import manager
from bpir.types import TensorType


def synthetic_graph(n_nodes: int, width: int = 16, seed: int = 0) -> Graph:
    """Residual blocks (matmul, bias, tanh/relu chains, skip adds, a row reduction) until the
    graph holds about ``n_nodes`` nodes."""
    rng = np.random.default_rng(seed)
    b = Builder("synthetic")
    x = b.input(TensorType((8, width), "f32"), "x")
    w = b.input(TensorType((width, width), "f32"), "w")
    bias = b.input(TensorType((width,), "f32"), "bias")
    h, outs = x, []
    while len(b.nodes) < n_nodes:
        z = b.add(b.matmul(h, w), b.broadcast_to(bias, (8, width)))
        a = b.tanh(z) if rng.random() < 0.5 else b.maximum(z, b.scalar(0.0, "f32"))
        for _ in range(int(rng.integers(1, 5))):
            a = b.emit(str(rng.choice(["mul", "add", "sub"])), a, b.scalar(float(rng.random()), "f32"))
        h = b.add(a, h)
        if rng.random() < 0.2:
            outs.append(b.reduce_sum(b.mul(h, h), axes=(1,), keepdims=False))
    return b.finish([h, *outs])


def chain_graph(n_nodes: int) -> Graph:
    """``x = tanh(x * 1.0001 + 0.001)`` repeated until the graph holds about ``n_nodes`` nodes
    (three per step, plus the two shared constants)."""
    b = Builder("chain")
    x = b.input(TensorType((4,), "f32"), "x")
    scale, shift = b.scalar(1.0001, "f32"), b.scalar(0.001, "f32")
    while len(b.nodes) < n_nodes:
        x = b.tanh(b.add(b.mul(x, scale), shift))
    return b.finish([x])


SHAPES = {"residual": synthetic_graph, "chain": chain_graph}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--shape", choices=[*SHAPES, "both"], default="both")
    args = parser.parse_args(argv)
    for shape in SHAPES if args.shape == "both" else [args.shape]:
        print(f"{shape}:")
        _bench(SHAPES[shape], [int(s) for s in args.sizes.split(",")])
    return 0


def _bench(make, sizes: list[int]) -> None:
    last = None
    print(f"{'nodes':>8} {'pipeline s':>11} {'fusion s':>9} {'x per 10x':>10}  per pass")
    for n in sizes:
        g = make(n)
        t0 = time.perf_counter()
        report = manager.PassReport()
        manager.optimize(g, verify_each=False, report=report)
        total = time.perf_counter() - t0
        fusion_s = sum(r.seconds for r in report.records if r.name == "fusion")
        growth = f"{total / last:10.1f}" if last else f"{'':>10}"
        per_pass = ", ".join(f"{r.name} {r.seconds * 1e3:.0f}ms" for r in report.records)
        print(f"{len(g.nodes):>8} {total:11.3f} {fusion_s:9.3f} {growth}  {per_pass}")
        last = total


if __name__ == "__main__":
    raise SystemExit(main())
