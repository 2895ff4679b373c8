"""Recurrent cells (LSTM, GRU, PyTorch's equations and gate order) and an unrolled sequence
helper: a static Python loop, so a sequence of T steps traces into one graph."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from bpir import random as bpir_random

from . import nn as bnp
from .initializers import glorot_uniform


def lstm_init(key, n_in: int, hidden: int, dtype="float32", w_init=glorot_uniform) -> dict:
    """``{"wi": (n_in, 4H), "wh": (H, 4H), "b": (4H,)}``, gates ordered input, forget, cell,
    output; the forget gate's bias starts at 1 (Jozefowicz et al., 2015)."""
    k1, k2 = bpir_random.split(key)
    b = np.zeros(4 * hidden, dtype)
    b[hidden : 2 * hidden] = 1
    return {
        "wi": w_init(k1, (n_in, 4 * hidden), dtype),
        "wh": w_init(k2, (hidden, 4 * hidden), dtype),
        "b": b,
    }


def lstm_carry(batch: int, hidden: int, dtype="float32") -> tuple:
    """The zero ``(h, c)`` an LSTM starts from."""
    return np.zeros((batch, hidden), dtype), np.zeros((batch, hidden), dtype)


def lstm_cell(params: dict, carry: tuple, x) -> tuple:
    """One step: ``((h, c), h)`` from ``(h, c)`` and ``x`` of shape ``(N, n_in)``."""
    h, c = carry
    hidden = h.shape[-1]
    z = x @ params["wi"] + h @ params["wh"] + params["b"]
    i = bnp.sigmoid(z[:, :hidden])
    f = bnp.sigmoid(z[:, hidden : 2 * hidden])
    g = np.tanh(z[:, 2 * hidden : 3 * hidden])
    o = bnp.sigmoid(z[:, 3 * hidden :])
    c = f * c + i * g
    h = o * np.tanh(c)
    return (h, c), h


def gru_init(key, n_in: int, hidden: int, dtype="float32", w_init=glorot_uniform) -> dict:
    """``{"wi": (n_in, 3H), "wh": (H, 3H), "bi": (3H,), "bh": (3H,)}``, gates ordered reset,
    update, new (PyTorch's layout, which keeps the hidden bias inside the reset product)."""
    k1, k2 = bpir_random.split(key)
    return {"wi": w_init(k1, (n_in, 3 * hidden), dtype), "wh": w_init(k2, (hidden, 3 * hidden), dtype),
            "bi": np.zeros(3 * hidden, dtype), "bh": np.zeros(3 * hidden, dtype)}  # fmt: skip


def gru_cell(params: dict, h, x) -> tuple:
    """One step: ``(h, h)``; ``n = tanh(x Wn + bn + r * (h Un + cn))``, ``h' = (1 - z) n + z h``."""
    hidden = h.shape[-1]
    gi = x @ params["wi"] + params["bi"]
    gh = h @ params["wh"] + params["bh"]
    r = bnp.sigmoid(gi[:, :hidden] + gh[:, :hidden])
    z = bnp.sigmoid(gi[:, hidden : 2 * hidden] + gh[:, hidden : 2 * hidden])
    n = np.tanh(gi[:, 2 * hidden :] + r * gh[:, 2 * hidden :])
    h = (1 - z) * n + z * h
    return h, h


def unroll(cell: Callable, params, carry, xs, time_axis: int = 1):
    """Run ``cell(params, carry, x_t) -> (carry, y_t)`` over ``xs``'s ``time_axis``; returns the
    last carry and the outputs stacked on the same axis."""
    steps = xs.shape[time_axis]
    index = (slice(None),) * time_axis
    ys = []
    for t in range(steps):
        carry, y = cell(params, carry, xs[(*index, t)])
        ys.append(y)
    return carry, np.stack(ys, axis=time_axis)
