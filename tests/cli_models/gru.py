"""A GRU cell unrolled over three steps, squared error on the last state (a CLI test model)."""

import numpy as np

import bpir.numpy as bnp


def loss(p, xs, target):
    h = np.zeros((xs.shape[1], p["Uz"].shape[0]), np.float32)
    for x in xs:
        z = bnp.sigmoid(x @ p["Wz"] + h @ p["Uz"])
        r = bnp.sigmoid(x @ p["Wr"] + h @ p["Ur"])
        n = np.tanh(x @ p["Wn"] + (r * h) @ p["Un"])
        h = (1 - z) * n + z * h
    return np.mean((h - target) ** 2)


def example_args():
    rng = np.random.default_rng(0)
    p = {k: (rng.standard_normal((3, 4) if k[0] == "W" else (4, 4)) * 0.4).astype(np.float32)
         for k in ("Wz", "Uz", "Wr", "Ur", "Wn", "Un")}  # fmt: skip
    return (
        p,
        rng.standard_normal((3, 2, 3)).astype(np.float32),
        rng.standard_normal((2, 4)).astype(np.float32),
    )
