"""A small CNN: conv, ReLU, max-pool, linear head, cross-entropy (a model file for the CLI tests)."""

import numpy as np

import bpir.numpy as bnp


def loss(p, x, labels):
    h = np.maximum(bnp.conv2d(x, p["k"], p["kb"], padding=1), 0)
    h = bnp.max_pool2d(h, 2)
    logits = h.reshape(h.shape[0], -1) @ p["W"] + p["b"]
    return bnp.cross_entropy(logits, labels)


def example_args():
    rng = np.random.default_rng(0)
    p = {"k": (rng.standard_normal((2, 1, 3, 3)) * 0.5).astype(np.float32), "kb": np.zeros(2, np.float32),
         "W": (rng.standard_normal((2 * 2 * 2, 3)) * 0.5).astype(np.float32), "b": np.zeros(3, np.float32)}  # fmt: skip
    return p, rng.standard_normal((2, 1, 4, 4)).astype(np.float32), np.array([0, 2])
