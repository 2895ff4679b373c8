"""Example models written as plain NumPy code; the tour, the CLI, the tests and the
benchmarks all use these same definitions."""

from __future__ import annotations

import numpy as np

import bpir
import bpir.numpy as bnp


def init_mlp(sizes, dtype="float32", seed=0) -> dict:
    """He-initialised weights and zero biases for an MLP with layer widths ``sizes``."""
    rng = np.random.default_rng(seed)
    params = {}
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:]), start=1):
        params[f"W{i}"] = (rng.standard_normal((n_in, n_out)) * np.sqrt(2.0 / n_in)).astype(dtype)
        params[f"b{i}"] = np.zeros(n_out, dtype=dtype)
    return params


def mlp_logits(params: dict, x):
    """ReLU hidden layers, linear output layer."""
    n = len(params) // 2
    h = x
    for i in range(1, n):
        h = np.maximum(h @ params[f"W{i}"] + params[f"b{i}"], 0)
    return h @ params[f"W{n}"] + params[f"b{n}"]


def mlp_loss(params: dict, x, labels):
    """Softmax cross-entropy of the MLP's logits against integer labels."""
    return bnp.cross_entropy(mlp_logits(params, x), labels)


def sgd_step(params: dict, x, labels, lr=0.1):
    """One training step (forward, backward, SGD update) as one traceable function."""
    loss, grads = bpir.value_and_grad(mlp_loss)(params, x, labels)
    return loss, {k: params[k] - lr * grads[k] for k in params}


def mlp_batch(sizes, batch, dtype="float32", seed=1):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, sizes[0])).astype(dtype)
    labels = rng.integers(0, sizes[-1], size=batch).astype(np.int64)
    return x, labels


def chain(x):
    """The transcendental elementwise chain of the benchmarks: 8 ops, one pass when fused."""
    return np.tanh(x * 0.5 + 1) * bnp.sigmoid(x) - np.exp(-x * x)


def textbook_mlp_loss(W1, b1, W2, b2, x, y):
    """A hand-written textbook MLP: sigmoid as 1/(1+exp(-z)), mean squared error."""
    z1 = np.dot(x, W1) + b1
    a1 = 1 / (1 + np.exp(-z1))
    z2 = np.dot(a1, W2) + b2
    return np.mean((z2 - y) ** 2)
