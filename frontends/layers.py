"""Functional layers (``bpir.nn``): parameters are pytrees of arrays passed in and returned,
never hidden state. Each layer has ``*_init(key, ...)`` building its parameters and an apply
function that runs eagerly on NumPy arrays and traces inside ``bpir.compile``/``bpir.grad``."""

from __future__ import annotations

import math

import numpy as np

from bpir import random as bpir_random
from bpir.pytree import flatten

from . import nn as bnp
from .dropout import dropout as _dropout
from .initializers import glorot_uniform, he_normal
from .initializers import normal as normal_init


def _pair(v) -> tuple[int, int]:
    return (int(v), int(v)) if np.isscalar(v) else tuple(int(d) for d in v)


# -- dense, conv, pooling ---------------------------------------------------------------------


def dense_init(key, n_in: int, n_out: int, dtype="float32", w_init=glorot_uniform) -> dict:
    """``{"w": (n_in, n_out), "b": (n_out,)}``; the bias starts at zero."""
    return {"w": w_init(key, (n_in, n_out), dtype), "b": np.zeros(n_out, dtype)}


def dense(params: dict, x):
    """``x @ w + b``."""
    return x @ params["w"] + params["b"]


def conv2d_init(key, c_in: int, c_out: int, kernel_size, dtype="float32", w_init=he_normal) -> dict:
    """``{"w": OIHW, "b": (c_out,)}``."""
    kh, kw = _pair(kernel_size)
    return {"w": w_init(key, (c_out, c_in, kh, kw), dtype), "b": np.zeros(c_out, dtype)}


def conv2d(params: dict, x, stride=1, padding=0):
    """Cross-correlation of NCHW ``x`` with the layer's OIHW weight, plus bias."""
    return bnp.conv2d(x, params["w"], params.get("b"), stride=stride, padding=padding)


max_pool2d = bnp.max_pool2d
avg_pool2d = bnp.avg_pool2d


def flatten_batch(x):
    """``(N, ...) -> (N, prod(...))``."""
    return np.reshape(x, (x.shape[0], -1))


# -- normalisation, dropout, embedding ---------------------------------------------------------


def batch_norm_init(num_features: int, dtype="float32") -> tuple[dict, dict]:
    """``(params, state)``: scale 1 and bias 0; running mean 0 and variance 1."""
    params = {"scale": np.ones(num_features, dtype), "bias": np.zeros(num_features, dtype)}
    state = {"mean": np.zeros(num_features, dtype), "var": np.ones(num_features, dtype)}
    return params, state


def batch_norm(params: dict, state: dict, x, train: bool, momentum: float = 0.9, eps: float = 1e-5):
    """Normalise over every axis but the channel axis 1 (``(N, C)`` or NCHW); returns
    ``(y, new_state)``. Training uses the batch's mean and (biased) variance and updates the
    running statistics as ``momentum * running + (1 - momentum) * batch`` (Flax's convention);
    evaluation uses the running statistics and returns the state unchanged."""
    if x.ndim < 2:
        raise ValueError(f"batch_norm wants (N, C, ...) input, got shape {x.shape}")
    axes = (0, *range(2, x.ndim))
    shape = (1, x.shape[1]) + (1,) * (x.ndim - 2)
    if train:
        mean = np.mean(x, axis=axes)
        var = np.mean((x - np.reshape(mean, shape)) ** 2, axis=axes)
        new_state = {
            "mean": momentum * state["mean"] + (1 - momentum) * bnp.stop_gradient(mean),
            "var": momentum * state["var"] + (1 - momentum) * bnp.stop_gradient(var),
        }
    else:
        mean, var, new_state = state["mean"], state["var"], state
    inv = 1 / np.sqrt(np.reshape(var, shape) + eps)
    y = (x - np.reshape(mean, shape)) * inv * np.reshape(params["scale"], shape) + np.reshape(
        params["bias"], shape
    )
    return y, new_state


def layer_norm_init(num_features: int, dtype="float32") -> dict:
    return {"scale": np.ones(num_features, dtype), "bias": np.zeros(num_features, dtype)}


def layer_norm(params: dict, x, eps: float = 1e-5):
    """Normalise over the last axis with the (biased) variance, then scale and shift."""
    mean = np.mean(x, axis=-1, keepdims=True)
    var = np.mean((x - mean) ** 2, axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * params["scale"] + params["bias"]


def dropout(key, x, rate: float, train: bool = True):
    """Inverted dropout (``bnp.dropout``) when training; the identity when evaluating."""
    return _dropout(key, x, rate) if train else x


def embedding_init(key, num_embeddings: int, dim: int, dtype="float32") -> dict:
    """``{"table": (num_embeddings, dim)}`` drawn from N(0, 1)."""
    return {"table": normal_init(key, (num_embeddings, dim), dtype, stddev=1.0)}


def embedding(params: dict, ids):
    """Rows of the table for integer ``ids`` (any shape): ``ids.shape + (dim,)``."""
    return params["table"][ids]


# -- attention --------------------------------------------------------------------------------


def multi_head_attention_init(key, d_model: int, num_heads: int, dtype="float32") -> dict:
    """Query, key, value and output projections, each ``d_model -> d_model``."""
    if d_model % num_heads:
        raise ValueError(f"d_model {d_model} is not divisible by num_heads {num_heads}")
    keys = bpir_random.split(key, 4)
    return {name: dense_init(keys[i], d_model, d_model, dtype) for i, name in enumerate("qkvo")}


def multi_head_attention(params: dict, q, k, v, num_heads: int, mask=None):
    """Scaled dot-product attention over ``num_heads`` heads (Vaswani et al., 2017).
    ``q``: ``(N, Tq, D)``, ``k`` and ``v``: ``(N, Tk, D)``; ``mask`` (optional, boolean,
    broadcastable to ``(N, heads, Tq, Tk)``) is True where a query may attend. Returns
    ``(N, Tq, D)``."""
    n, tq, d = q.shape
    tk = k.shape[1]
    if d % num_heads:
        raise ValueError(f"model width {d} is not divisible by num_heads {num_heads}")
    dh = d // num_heads

    def heads(x, t):
        return np.transpose(np.reshape(x, (n, t, num_heads, dh)), (0, 2, 1, 3))

    qh, kh, vh = (
        heads(dense(params["q"], q), tq),
        heads(dense(params["k"], k), tk),
        heads(dense(params["v"], v), tk),
    )
    scores = (qh @ np.swapaxes(kh, -1, -2)) * (1.0 / math.sqrt(dh))
    if mask is not None:
        scores = np.where(mask, scores, -1e9)
    out = bnp.softmax(scores, axis=-1) @ vh  # (N, heads, Tq, dh)
    out = np.reshape(np.transpose(out, (0, 2, 1, 3)), (n, tq, d))
    return dense(params["o"], out)


# -- penalties --------------------------------------------------------------------------------


def _float_leaves(params) -> list:
    return [p for p in flatten(params)[0] if np.dtype(p.dtype).kind == "f"]


def l2_penalty(params):
    """Sum of squares of every floating-point leaf (multiply by the weight decay yourself)."""
    return sum(np.sum(p * p) for p in _float_leaves(params))


def l1_penalty(params):
    """Sum of absolute values of every floating-point leaf."""
    return sum(np.sum(np.abs(p)) for p in _float_leaves(params))
