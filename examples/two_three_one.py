"""The 2-3-1 network worked by hand: sigmoid hidden layer, linear output, squared error.

Inputs x = [0.4, 0.5]; hidden weights (x @ W1) W1 = [[0.1, 0.4, 0.7], [0.1, 0.2, 0.3]], biases
b1 = 0.1; output weights w2 = [0.4, 0.5, 0.6], bias b2 = 0.7; target t = 0.8;
loss = 0.5 * (y - t)**2. By hand:
    z1 = x @ W1 + b1          = [0.19, 0.36, 0.53]
    a1 = sigmoid(z1)          = [0.5474, 0.5890, 0.6295]
    z2 = a1 @ w2 + b2         = 1.59115   (the output, linear)
    loss                      = 0.31296
    output delta dL/dz2       = z2 - t = 0.79115
    hidden deltas dL/dz1      = 0.79115 * w2 * a1 * (1 - a1) = [0.07841, 0.09576, 0.11071]
bpir computes the same numbers: the deltas are the gradients with respect to the biases
(dL/db = dL/dz), and dL/dW1 = outer(x, hidden deltas).

Run: python -m examples.two_three_one [--backend numba]"""

from __future__ import annotations

import argparse

import numpy as np

import bpir
import bpir.numpy as bnp

X = np.array([0.4, 0.5])
TARGET = 0.8
PARAMS = {
    "W1": np.array([[0.1, 0.4, 0.7], [0.1, 0.2, 0.3]]),
    "b1": np.full(3, 0.1),
    "w2": np.array([0.4, 0.5, 0.6]),
    "b2": np.array(0.7),
}


def forward(p, x):
    z1 = x @ p["W1"] + p["b1"]
    a1 = bnp.sigmoid(z1)
    z2 = a1 @ p["w2"] + p["b2"]
    return z1, a1, z2


def loss(p, x, t):
    return 0.5 * (forward(p, x)[2] - t) ** 2


def run(backend: str = "numpy") -> dict:
    """The worked numbers, computed by a compiled forward and a compiled gradient."""
    z1, a1, z2 = bpir.compile(forward, backend)(PARAMS, X)
    value, grads = bpir.compile(bpir.value_and_grad(loss), backend)(PARAMS, X, TARGET)
    return {"z1": np.asarray(z1), "a1": np.asarray(a1), "z2": float(z2), "loss": float(value),
            "output_delta": float(grads["b2"]), "hidden_deltas": np.asarray(grads["b1"]),
            "dW1": np.asarray(grads["W1"])}  # fmt: skip


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backend", default="numpy", choices=bpir.backends())
    r = run(ap.parse_args(argv).backend)
    np.set_printoptions(precision=5, suppress=True)
    for k, v in r.items():
        print(f"{k:>14} = {np.round(v, 5)}")


if __name__ == "__main__":
    main()
