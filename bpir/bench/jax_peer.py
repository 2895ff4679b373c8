"""Benchmark: training steps through bpir's JAX backend against the same math written by hand
for ``jax.jit``, in one process: both MLPs with the library cross-entropy and with a NumPy
written-out loss, the CNN and the GRU step (``bpir.bench.peer_models``). Outputs are checked to
agree first; then, timed round-robin (medians): the compiled function, ``jax.jit``, the same
function saved and loaded back (``bpir.save``/``bpir.load``), and bpir's XLA program called on
flat arguments without bpir's Python call path (which separates call overhead from the HLO).
Medians of wall time and of process CPU time (robust to other processes on a shared machine);
also prints the opcodes whose counts differ between the two optimized HLO modules.

    python -m bpir.bench.jax_peer [--small]     (or: bpir bench jax)"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import tempfile
import time
from collections import Counter
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

import bpir
from bpir.bench.peer_models import Workload, workloads
from bpir.bench.timing import block, table

PEERS = ("bpir jax", "jax.jit", "bpir loaded", "XLA program")


def jax_loss(params, x, labels):
    n = len(params) // 2
    h = x
    for i in range(1, n):
        h = jnp.maximum(h @ params[f"W{i}"] + params[f"b{i}"], 0)
    logits = h @ params[f"W{n}"] + params[f"b{n}"]
    logp = jax.nn.log_softmax(logits, axis=-1)
    return -jnp.mean(jnp.take_along_axis(logp, labels[:, None], axis=1))


@jax.jit
def jax_step(params, x, labels, lr=0.1):
    loss, grads = jax.value_and_grad(jax_loss)(params, x, labels)
    return loss, {k: params[k] - lr * grads[k] for k in params}


def hlo_op_counts(compiled_text: str) -> Counter:
    """Instruction opcodes of an optimized HLO module (fusion bodies included)."""
    ops = re.findall(r"=\s*[a-z0-9\[\]{},:]+\s+([a-z][a-z0-9\-]*)\(", compiled_text)
    return Counter(op for op in ops if op not in ("parameter", "tuple", "get-tuple-element"))


def check_agreement(name: str, ours, jax_result, loaded) -> None:
    """Refuse to time programs that compute something else. The loaded artifact runs the same
    XLA program: every leaf within 32 ulps of the leaf's largest value. ``jax.jit`` sums in
    other orders and a ReLU input near 0 may flip sign (one unit's gradient changes): the loss
    within 64 ulps, every other leaf within 2% of its largest value (a wrong transpose, sign or
    update is far off)."""
    want = [np.asarray(x, np.float64) for x in jax.tree_util.tree_leaves(ours)]
    for peer, result, tols in (("loaded", loaded, (32, 32)), ("jax.jit", jax_result, (64, 2e-2))):
        got = jax.tree_util.tree_leaves(result)
        if len(got) != len(want):
            raise SystemExit(f"{name}: {peer} returns {len(got)} leaves, bpir {len(want)}")
        for k, (a, b) in enumerate(zip(want, got)):
            eps = np.finfo(np.asarray(b).dtype).eps if np.asarray(b).dtype.kind == "f" else 0
            tol = tols[0] * eps if k == 0 or peer == "loaded" else tols[1]
            error = float(np.max(np.abs(a - np.asarray(b, np.float64)))) / (float(np.max(np.abs(a))) or 1.0)
            if error > tol:
                raise SystemExit(f"{name}: {peer} disagrees with bpir jax on output leaf {k} "
                                 f"(max |difference| / max |value| = {error:.2e} > {tol:.1e})")  # fmt: skip


def wall_and_cpu_medians(fns, rounds: int, per_round: int, budget_s: float = 60.0) -> tuple[list, list]:
    """Median wall and process-CPU seconds per call of each callable, timed round-robin as in
    ``interleaved_times`` (one untimed call, then ``per_round`` timed ones, per peer and round).
    CPU time (all of this process's threads) barely moves when other processes load the machine,
    so its ratios hold on a busy shared machine where wall-time ratios drift."""
    wall: list[list[float]] = [[] for _ in fns]
    cpu: list[list[float]] = [[] for _ in fns]
    start = time.perf_counter()
    for r in range(rounds):
        if r >= 2 and time.perf_counter() - start > budget_s:
            break
        for fn, w, c in zip(fns, wall, cpu):
            block(fn())
            for _ in range(per_round):
                t0, c0 = time.perf_counter(), time.process_time()
                block(fn())
                w.append(time.perf_counter() - t0)
                c.append(time.process_time() - c0)
    return [statistics.median(t) for t in wall], [statistics.median(t) for t in cpu]


def measure(w: Workload, rounds: int, per_round: int) -> tuple[list[float], list[float], Counter, Counter]:
    """Median wall and CPU seconds of the four peers, and the opcode counts of bpir's and jax's HLO."""
    f = bpir.compile(w.step, backend="jax", example_args=w.example)
    with tempfile.TemporaryDirectory(prefix="bpir_jax_peer_") as folder:
        f.save(folder)
        loaded = bpir.load(folder)
    with jax.enable_x64(True):  # int64 labels stay int64, as bpir keeps them
        dev = jax.device_put(w.example)
    ex = f.executable
    flat = [leaf for leaf in bpir.pytree.flatten_like(tuple(dev), ex.in_tree)]

    def program():
        with jax.enable_x64(True):
            return ex.run.jitted(*flat)

    peers = [partial(f, *dev), partial(w.jax_step, *dev), partial(loaded, *dev), program]
    check_agreement(w.name, peers[0](), peers[1](), peers[2]())
    wall, cpu = wall_and_cpu_medians(peers, rounds, per_round)
    ours = ex.run.lower().compile().as_text()
    with jax.enable_x64(True):
        theirs = w.jax_step.lower(*dev).compile().as_text()
    return wall, cpu, hlo_op_counts(ours), hlo_op_counts(theirs)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--small", action="store_true", help="only the small MLP (both losses)")
    parser.add_argument("--rounds", type=int, default=6, help="round-robin rounds (default 6)")
    args = parser.parse_args(argv)
    head = ["workload", *(f"{p} ms" for p in PEERS), "bpir/jax", "loaded/bpir", "program/jax"]
    rows = {"wall": [head + ["HLO ops bpir/jax"]], "CPU": [head]}
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    for w in workloads(args.small):
        wall, cpu, a, b = measure(w, args.rounds, per_round=20 if "small" in w.name else 5)
        for kind, t in (("wall", wall), ("CPU", cpu)):
            rows[kind].append([w.name, *(f"{s * 1e3:.3f}" for s in t), f"{t[0] / t[1]:.3f}", f"{t[2] / t[0]:.3f}",
                               f"{t[3] / t[1]:.3f}"])  # fmt: skip
        rows["wall"][-1].append(f"{sum(a.values())}/{sum(b.values())}")
        diff = {k: (a[k], b[k]) for k in sorted(set(a) | set(b)) if a[k] != b[k]}
        print(f"{w.name}: HLO opcodes that differ (bpir, jax): {diff or 'none'}", flush=True)
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print("medians of wall time per call:")
    print(table(rows["wall"]))
    print("medians of process CPU time per call (all threads; robust to other processes' load):")
    print(table(rows["CPU"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
