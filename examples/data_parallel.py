"""Data-parallel training on 4 host devices through the jax backend.

The digits MLP (64-64-10) trains with ``bpir.train.fit(..., backend="jax",
compile_options={"data_parallel": ("x", "y")})``: the batch arguments are split over a 1-D
device mesh, parameters are replicated, and XLA inserts the gradient all-reduce. The same
training on one device gives the same loss curve (to float32 rounding of the reduction order).
JAX must see 4 devices before it starts, so run as a fresh process; ``main`` re-launches itself
with XLA_FLAGS=--xla_force_host_platform_device_count=4 when the flag is missing.

Run: python -m examples.data_parallel [--epochs 5]"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

import numpy as np

import bpir
import bpir.numpy as bnp
from bpir import nn, optim
from bpir import random as brandom

DEVICES = 4
FLAG = f"--xla_force_host_platform_device_count={DEVICES}"


def predict(p, x):
    return nn.dense(p["out"], np.tanh(nn.dense(p["h"], x)))


def loss(p, x, y):
    return bnp.cross_entropy(predict(p, x), y)


def run(epochs: int = 5, train_size: int | None = None) -> dict:
    import jax

    if len(jax.devices()) != DEVICES:
        raise RuntimeError(f"needs {DEVICES} devices, JAX sees {len(jax.devices())}: set XLA_FLAGS={FLAG}")
    (xtr, ytr), (xte, yte) = bpir.datasets.digits()
    if train_size is not None:
        xtr, ytr = xtr[:train_size], ytr[:train_size]
    k1, k2 = brandom.split(brandom.key(0))
    params = {"h": nn.dense_init(k1, 64, 64), "out": nn.dense_init(k2, 64, 10)}
    out = {}
    for name, options in (("1 device", None), (f"{DEVICES} devices", {"data_parallel": ("x", "y")})):
        r = bpir.train.fit(loss, params, optim.sgd(0.1, momentum=0.9), (xtr, ytr), epochs=epochs, batch_size=32,
                           predict_fn=predict, eval_data=(xte, yte), backend="jax", progress=False,
                           compile_options=options)  # fmt: skip
        out[name] = r.history
    sharded = bpir.compile(predict, "jax", example_args=(params, xte[:32]), data_parallel=("x",))
    out["devices_used"] = len(sharded(params, xte[:32]).sharding.device_set)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--train-size", type=int, default=None)
    a = ap.parse_args(argv)
    if FLAG not in os.environ.get("XLA_FLAGS", ""):
        env = {**os.environ, "XLA_FLAGS": (os.environ.get("XLA_FLAGS", "") + " " + FLAG).strip()}
        return subprocess.call(
            [sys.executable, "-m", "examples.data_parallel", *(argv or sys.argv[1:])], env=env
        )
    r = run(a.epochs, a.train_size)
    print(f"outputs sharded over {r.pop('devices_used')} devices")
    print(f"{'':>10} " + " ".join(f"epoch {e:>2}" for e in range(1, a.epochs + 1)))
    for name, h in r.items():
        print(
            f"{name:>10} "
            + " ".join(f"{v:8.5f}" for v in h["loss"])
            + f"   accuracy {h['eval_accuracy'][-1]:.3f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
