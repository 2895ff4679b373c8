"""A model as a user writes it, for the README's command-line examples: plain NumPy, a loss, a
training step and the example arguments the CLI traces them on.

    bpir show examples/mymodel.py:step --stage optimized
    python -m examples.mymodel OUT.npz      (writes example inputs keyed by argument path)"""

from __future__ import annotations

import sys

import numpy as np

import bpir
import bpir.numpy as bnp


def loss(params, x, labels):
    h = np.tanh(x @ params["W1"] + params["b1"])
    return bnp.cross_entropy(h @ params["W2"] + params["b2"], labels)


def step(params, x, labels):
    value, grads = bpir.value_and_grad(loss)(params, x, labels)
    return value, {k: params[k] - 0.1 * grads[k] for k in params}


def example_args():
    rng = np.random.default_rng(0)
    params = {"W1": rng.standard_normal((8, 16)).astype(np.float32) * 0.3, "b1": np.zeros(16, np.float32),
              "W2": rng.standard_normal((16, 4)).astype(np.float32) * 0.3, "b2": np.zeros(4, np.float32)}  # fmt: skip
    return params, rng.standard_normal((32, 8)).astype(np.float32), rng.integers(0, 4, 32)


if __name__ == "__main__":
    params, x, labels = example_args()
    np.savez(sys.argv[1], x=x, labels=labels, **{f"params[{k!r}]": v for k, v in params.items()})
