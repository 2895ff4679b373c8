"""Benchmark, in one process: the SGD training step (forward, backward, update compiled as one
graph) of two MLPs and the transcendental chain, on bpir's Numba and NumPy backends against
hand-written NumPy and ``jax.jit`` of the same computation; then a CNN and a GRU step
(``bpir.bench.cpu_nets``) on bpir's Numba, NumPy and JAX backends against ``jax.jit``, with
their cold and warm (disk cache) compile times per backend (skipped by ``--small``). Prints medians, ratios to
``jax.jit``, GFLOP/s of the big MLP step (next to OpenBLAS's own sgemm rate here), and the
cold-compile / disk-cache times of the small MLP step (each measured in a fresh process).

The peers are timed round-robin (one call of each per round) so that load from other
processes on a shared machine slows them alike and the ratios stay fair.

    python -m bpir.bench.cpu [--small]     (or: bpir bench cpu)"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from functools import partial

import numpy as np

import bpir
from bpir.bench.timing import interleaved_medians, table
from bpir.demo.models import chain, init_mlp, mlp_batch, sgd_step

MLPS = {
    "small MLP 784-128-10 b128": ([784, 128, 10], 128),
    "big MLP 784-1024-1024-10 b256": ([784, 1024, 1024, 10], 256),
}


def numpy_step(params, x, labels, lr=0.1):
    """Textbook backpropagation by hand: ReLU layers, softmax cross-entropy, SGD."""
    n = len(params) // 2
    acts, h = [x], x
    for i in range(1, n):
        h = np.maximum(h @ params[f"W{i}"] + params[f"b{i}"], 0)
        acts.append(h)
    z = h @ params[f"W{n}"] + params[f"b{n}"]
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    s = e.sum(axis=1, keepdims=True)
    batch = x.shape[0]
    loss = np.mean(np.log(s[:, 0]) - z[np.arange(batch), labels])
    delta = e / s
    delta[np.arange(batch), labels] -= 1
    delta /= np.float32(batch)
    new = {}
    for i in range(n, 0, -1):
        a = acts[i - 1]
        new[f"W{i}"] = params[f"W{i}"] - lr * (a.T @ delta)
        new[f"b{i}"] = params[f"b{i}"] - lr * delta.sum(axis=0)
        if i > 1:
            delta = (delta @ params[f"W{i}"].T) * (a > 0)
    return loss, new


def numpy_chain(x):
    return np.tanh(x * np.float32(0.5) + np.float32(1)) / (np.float32(1) + np.exp(-x)) - np.exp(-x * x)


def jax_peers():
    import jax
    import jax.numpy as jnp

    from bpir.bench.jax_peer import jax_step

    return jax, jax_step, jax.jit(lambda x: jnp.tanh(x * 0.5 + 1) * jax.nn.sigmoid(x) - jnp.exp(-x * x))


def check_agreement(name: str, results: list, exact_peers: int) -> None:
    """Refuse to time peers that compute something else: every peer's leaves must match bpir's
    Numba result (the first) within 32 ulps of each leaf's largest value. Only the first
    ``exact_peers`` are held to that on every leaf: from there on (``jax.jit``) only the first
    leaf (the loss or the chain) is, because an MLP step is discontinuous in f32 rounding: a
    ReLU input near 0 whose sign depends on the summation order flips one unit's gradient
    (the big MLP has one such unit, which moves ``b1`` by 1% of its largest entry)."""
    import jax

    want = [np.asarray(leaf) for leaf in jax.tree_util.tree_leaves(results[0])]
    for i, result in enumerate(results[1:], start=1):
        got = [np.asarray(leaf) for leaf in jax.tree_util.tree_leaves(result)]
        for k, (a, b) in enumerate(zip(want[: None if i < exact_peers else 1], got)):
            scale = float(np.max(np.abs(a))) or 1.0
            error = float(np.max(np.abs(a.astype(np.float64) - b))) / scale
            if error > 32 * np.finfo(a.dtype).eps:
                raise SystemExit(f"{name}: peer {i} disagrees with bpir numba on output leaf {k} "
                                 f"(max |difference| / max |value| = {error:.2e})")  # fmt: skip


def mlp_flops(sizes, batch) -> int:
    gemms = sum(n_in * n_out for n_in, n_out in zip(sizes[:-1], sizes[1:]))
    return 2 * batch * (3 * gemms - sizes[0] * sizes[1])  # no input gradient for the first layer


def sgemm_gflops(n: int = 1024) -> float:
    """OpenBLAS's float32 GEMM rate on this machine (n x n times n x n), the big MLP's ceiling."""
    a = np.random.default_rng(0).standard_normal((n, n)).astype(np.float32)
    (t,) = interleaved_medians([partial(np.matmul, a, a)])
    return 2 * n**3 / t / 1e9


COLD = """
import time
t0 = time.perf_counter()
import numpy as np, bpir, bpir.backends.numba.backend
from bpir.demo.models import init_mlp, mlp_batch, sgd_step
t1 = time.perf_counter()
p = init_mlp([784, 128, 10]); x, l = mlp_batch([784, 128, 10], 128)
f = bpir.compile(sgd_step, backend="numba", example_args=(p, x, l))
f(p, x, l)
print(t1 - t0, time.perf_counter() - t1)
"""


def compile_times() -> list[tuple[float, float]]:
    """(imports, trace + optimize + codegen + compile + first call) seconds of the small MLP
    step in a fresh process with an empty cache, then in a second one hitting the disk cache."""
    with tempfile.TemporaryDirectory(prefix="bpir_bench_cache_") as cache:
        env = {**os.environ, "BPIR_CACHE_DIR": cache}
        runs = [subprocess.run([sys.executable, "-c", COLD], env=env, capture_output=True, text=True, check=True)
                for _ in range(2)]  # fmt: skip
    return [tuple(float(t) for t in run.stdout.split()[-2:]) for run in runs]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--small", action="store_true", help="small MLP and a 1M-element chain only (no CNN, GRU)"
    )
    args = parser.parse_args(argv)
    jax, jax_step, jax_chain = jax_peers()
    rows = [["workload", "bpir numba", "bpir numpy", "numpy hand", "jax.jit", "numba/jax", "note"]]
    for name, (sizes, batch) in list(MLPS.items())[: 1 if args.small else None]:
        params = init_mlp(sizes)
        x, labels = mlp_batch(sizes, batch)
        example = (params, x, labels)
        fn = bpir.compile(sgd_step, backend="numba", example_args=example)
        fp = bpir.compile(sgd_step, backend="numpy", example_args=example)
        with jax.enable_x64(True):
            dev = jax.device_put(example)
        peers = [
            partial(fn, *example),
            partial(fp, *example),
            partial(numpy_step, *example),
            partial(jax_step, *dev),
        ]
        check_agreement(name, [peer() for peer in peers], exact_peers=3)
        t = interleaved_medians(peers, per_round=20 if batch < 256 else 5)
        gflops = mlp_flops(sizes, batch) / t[0] / 1e9
        rows.append([name, *(f"{s * 1e3:.3f} ms" for s in t), f"{t[0] / t[3]:.2f}", f"{gflops:.0f} GFLOP/s"])
    n = (1 << 20) if args.small else (1 << 24)
    for dtype in ("float32", "float64"):
        x = np.random.default_rng(0).standard_normal(n).astype(dtype)
        fn = bpir.compile(chain, backend="numba", example_args=(x,))
        fp = bpir.compile(chain, backend="numpy", example_args=(x,))
        with jax.enable_x64(dtype == "float64"):
            xd = jax.device_put(x)
            peers = [partial(fn, x), partial(fp, x), partial(numpy_chain, x), partial(jax_chain, xd)]
            check_agreement(f"chain {dtype}", [peer() for peer in peers], exact_peers=4)
            t = interleaved_medians(peers, 4, 3)
        rows.append([f"chain {n:,} {dtype}", *(f"{s * 1e3:.3f} ms" for s in t), f"{t[0] / t[3]:.2f}",
                     f"{n * 2 * x.itemsize / t[0] / 1e9:.2f} GB/s"])  # fmt: skip
    print(table(rows))
    print(f"OpenBLAS sgemm 1024^3 float32 here: {sgemm_gflops():.0f} GFLOP/s")
    (imp0, cold), (imp1, cached) = compile_times()
    print(
        f"small MLP step, fresh process, empty cache: trace + optimize + codegen + Numba compile + "
        f"first call {cold:.2f} s (+ imports {imp0:.2f} s = {imp0 + cold:.2f} s)"
    )
    print(f"second process, disk cache: {cached:.2f} s (+ imports {imp1:.2f} s = {imp1 + cached:.2f} s)")
    if not args.small:
        from bpir.bench import cpu_nets

        rows = [["workload", *cpu_nets.TIMING_COLUMNS]]
        print(table(rows + cpu_nets.timing_rows(check_agreement, rounds=6, per_round=5)))
        print(table([["convolution (numba kernels)", *cpu_nets.CONV_COLUMNS]] + cpu_nets.conv_rows()))
        print("compile, fresh processes (imports excluded, last row): new machine (empty bpir cache) / new model"
              " (library kernels cached) / second process:")  # fmt: skip
        print(table([["model", *cpu_nets.PEERS]] + cpu_nets.compile_rows()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
