"""A two-layer MLP with softmax cross-entropy (a model file for the CLI tests)."""

import numpy as np

import bpir.numpy as bnp


def loss(params, x, labels):
    h = np.maximum(x @ params["W1"] + params["b1"], 0)
    return bnp.cross_entropy(h @ params["W2"] + params["b2"], labels)


def example_args():
    rng = np.random.default_rng(0)
    params = {"W1": rng.standard_normal((6, 8)).astype(np.float32), "b1": np.zeros(8, np.float32),
              "W2": rng.standard_normal((8, 3)).astype(np.float32), "b2": np.zeros(3, np.float32)}  # fmt: skip
    return params, rng.standard_normal((4, 6)).astype(np.float32), np.arange(4) % 3


def branchy(x):
    if x.sum() > 0:  # data-dependent control flow: cannot be traced
        return x
    return -x


def branchy_args():
    return (np.ones(3, np.float32),)
