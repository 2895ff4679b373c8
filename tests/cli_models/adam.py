"""One training step with a hand-written Adam update (a CLI test model): the step returns the
loss and the new parameters and moments, so it compiles to one graph."""

import numpy as np

import bpir


def mse(w, x, y):
    return np.mean((np.tanh(x @ w) - y) ** 2)


def step(w, m, v, x, y):
    loss, g = bpir.value_and_grad(mse)(w, x, y)
    m = 0.9 * m + 0.1 * g
    v = 0.999 * v + 0.001 * g * g
    w = w - 0.01 * (m / 0.1) / (np.sqrt(v / 0.001) + 1e-8)
    return loss, w, m, v


def example_args():
    rng = np.random.default_rng(0)
    w = rng.standard_normal((3, 2)).astype(np.float32)
    zeros = np.zeros_like(w)
    return (
        w,
        zeros,
        zeros,
        rng.standard_normal((5, 3)).astype(np.float32),
        rng.standard_normal((5, 2)).astype(np.float32),
    )


def no_example_here(w):
    return w * 2
