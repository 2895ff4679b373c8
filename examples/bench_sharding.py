"""Data, tensor and fully-sharded parallelism for the big MLP (784-1024-1024-10, batch 256, Adam
written out, float32) on 1, 2, 4 and 8 host devices: step time, per-device memory from XLA's
memory analysis, and the collectives XLA inserted.

    python -m examples.bench_sharding [--devices 1,2,4,8] [--repeat 5]

Each device count runs in a child process (XLA fixes the host device count at start). Host
devices share this machine's cores, so step time shows overhead, not speed-up: the bytes and the
collectives are the point."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

SIZES = [784, 1024, 1024, 10]
BATCH = 256


def loss(p, x, labels):
    import bpir.numpy as bnp

    h = np.maximum(x @ p["W1"] + p["b1"], 0)
    h = np.maximum(h @ p["W2"] + p["b2"], 0)
    return bnp.cross_entropy(h @ p["W3"] + p["b3"], labels)


def adam_step(p, m, v, t, x, labels):
    import bpir

    value, g = bpir.value_and_grad(loss)(p, x, labels)
    t = t + 1.0
    m = {k: 0.9 * m[k] + 0.1 * g[k] for k in p}
    v = {k: 0.999 * v[k] + 0.001 * g[k] * g[k] for k in p}
    lr = 1e-3 * np.sqrt(1 - 0.999**t) / (1 - 0.9**t)
    return value, {k: p[k] - lr * m[k] / (np.sqrt(v[k]) + 1e-8) for k in p}, m, v, t


def child(n: int, repeat: int) -> None:
    import jax
    from bpir.backends.jax import sharding as jsh

    import bpir
    import bpir.sharding as recipes

    rng = np.random.default_rng(0)
    p = {}
    for i, (a, b) in enumerate(zip(SIZES[:-1], SIZES[1:]), start=1):
        p[f"W{i}"] = (rng.standard_normal((a, b)) * np.sqrt(2 / a)).astype(np.float32)
        p[f"b{i}"] = np.zeros(b, np.float32)
    z = {k: np.zeros_like(w) for k, w in p.items()}
    x = rng.standard_normal((BATCH, SIZES[0])).astype(np.float32)
    labels = rng.integers(0, SIZES[-1], BATCH)
    args = (p, z, dict(z), np.zeros((), np.float32), x, labels)
    layers = [("W1", "b1"), ("W2", "b2"), ("W3", "b3")]
    tp = {}
    for root in ("p", "m", "v"):  # W3 (1024x10) row-split: 10 classes do not split 8 ways
        tp |= recipes.tensor_parallel_mlp(root, layers[:2]) | {f"{root}['W3']": ("model", None)}
    fsdp = recipes.data_parallel(["x", "labels"])
    for root in ("p", "m", "v"):
        fsdp |= recipes.fully_sharded(root, p, axis_size=n)
    configs = {"DP": ({"data": n}, recipes.data_parallel(["x", "labels"])), "TP": ({"model": n}, tp),
               "FSDP": ({"data": n}, fsdp)}  # fmt: skip
    rows = []
    for name, (mesh, specs) in configs.items():
        f = bpir.compile(adam_step, backend="jax", example_args=args, mesh=mesh, shardings=specs)
        compiled = f._current().run.lower().compile()
        mem = compiled.memory_analysis()
        jax.block_until_ready(f(*args))
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            jax.block_until_ready(f(*args))
            times.append(time.perf_counter() - t0)
        rows.append({"recipe": name, "devices": n, "ms": 1e3 * float(np.median(times)),
                     "arg_MB": mem.argument_size_in_bytes / 2**20, "temp_MB": mem.temp_size_in_bytes / 2**20,
                     "out_MB": mem.output_size_in_bytes / 2**20,
                     "collectives": jsh.collectives(compiled.as_text())})  # fmt: skip
    print(json.dumps(rows))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--devices", default="1,2,4,8")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    rows = []
    for n in (int(d) for d in args.devices.split(",")):
        env = {
            **os.environ,
            "XLA_FLAGS": f"--xla_force_host_platform_device_count={n}",
            "JAX_PLATFORMS": "cpu",
        }
        out = subprocess.run([sys.executable, "-m", "examples.bench_sharding", "--child", str(n), str(args.repeat)],
                             env=env, capture_output=True, text=True, check=True)  # fmt: skip
        rows += json.loads(out.stdout.strip().splitlines()[-1])
    print(f"{'recipe':<6} {'devices':>7} {'step ms':>9} {'args MB/dev':>12} {'temp MB/dev':>12}  collectives")
    for r in sorted(rows, key=lambda r: (r["recipe"], r["devices"])):
        coll = ", ".join(f"{k} x{v}" for k, v in r["collectives"].items()) or "none"
        print(
            f"{r['recipe']:<6} {r['devices']:>7} {r['ms']:>9.1f} {r['arg_MB']:>12.2f} {r['temp_MB']:>12.2f}  {coll}"
        )
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(int(sys.argv[2]), int(sys.argv[3]))
    else:
        raise SystemExit(main())
