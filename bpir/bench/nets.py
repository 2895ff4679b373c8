"""The benchmark's CNN and GRU training steps, written twice: as plain NumPy code that bpir
traces (``bpir.numpy`` for the layers) and by hand in JAX for ``jax.jit``, the same math.

CNN: conv 1->8 3x3 pad 1, relu, maxpool 2, conv 8->16 3x3 pad 1, relu, maxpool 2, dense
784->10, softmax cross-entropy, SGD. GRU: 2 layers over the time steps, a dense head on the
last hidden state, cross-entropy, Adam written out (moments and bias correction)."""

from __future__ import annotations

import numpy as np

import bpir
import bpir.numpy as bnp

ADAM = (0.9, 0.999, 1e-8)  # beta1, beta2, eps


def init_cnn(seed: int = 0, dtype="float32") -> dict:
    rng = np.random.default_rng(seed)

    def he(*shape, fan_in):
        return (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(dtype)

    return {"c1": he(8, 1, 3, 3, fan_in=9), "b1": np.zeros(8, dtype), "c2": he(16, 8, 3, 3, fan_in=72),
            "b2": np.zeros(16, dtype), "W": he(784, 10, fan_in=784), "b": np.zeros(10, dtype)}  # fmt: skip


def cnn_batch(batch: int = 64, seed: int = 1, dtype="float32"):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((batch, 1, 28, 28)).astype(dtype), rng.integers(0, 10, batch).astype(np.int64)


def cnn_loss(p: dict, x, labels):
    h = bnp.max_pool2d(np.maximum(bnp.conv2d(x, p["c1"], p["b1"], padding=1), 0), 2)
    h = bnp.max_pool2d(np.maximum(bnp.conv2d(h, p["c2"], p["b2"], padding=1), 0), 2)
    return bnp.cross_entropy(np.reshape(h, (h.shape[0], -1)) @ p["W"] + p["b"], labels)


def cnn_step(p: dict, x, labels, lr=0.1):
    loss, g = bpir.value_and_grad(cnn_loss)(p, x, labels)
    return loss, {k: p[k] - lr * g[k] for k in p}


GRU = {"layers": 2, "steps": 8, "batch": 16, "inputs": 16, "hidden": 32, "classes": 10}


def init_gru(seed: int = 0, dtype="float32") -> dict:
    """Per layer W (in, 3H), U (H, 3H), b (3H) for the update, reset and candidate gates."""
    rng, hid = np.random.default_rng(seed), GRU["hidden"]
    params = {}
    for i in range(GRU["layers"]):
        fan_in = GRU["inputs"] if i == 0 else hid
        params[f"W{i}"] = (rng.standard_normal((fan_in, 3 * hid)) / np.sqrt(fan_in)).astype(dtype)
        params[f"U{i}"] = (rng.standard_normal((hid, 3 * hid)) / np.sqrt(hid)).astype(dtype)
        params[f"b{i}"] = np.zeros(3 * hid, dtype)
    params["Wo"] = (rng.standard_normal((hid, GRU["classes"])) / np.sqrt(hid)).astype(dtype)
    params["bo"] = np.zeros(GRU["classes"], dtype)
    return params


def gru_batch(seed: int = 1, dtype="float32"):
    rng = np.random.default_rng(seed)
    xs = rng.standard_normal((GRU["steps"], GRU["batch"], GRU["inputs"])).astype(dtype)
    return xs, rng.integers(0, GRU["classes"], GRU["batch"]).astype(np.int64)


def init_adam(params: dict) -> dict:
    zeros = {k: np.zeros_like(v) for k, v in params.items()}
    return {"m": zeros, "v": {k: np.zeros_like(v) for k, v in params.items()}, "t": np.ones((), np.float32)}


def _gru_cell(p: dict, i: int, x, h, sigmoid, tanh):
    hid = GRU["hidden"]
    xw = x @ p[f"W{i}"] + p[f"b{i}"]
    hu = h @ p[f"U{i}"]
    z = sigmoid(xw[:, :hid] + hu[:, :hid])
    r = sigmoid(xw[:, hid : 2 * hid] + hu[:, hid : 2 * hid])
    n = tanh(xw[:, 2 * hid :] + r * hu[:, 2 * hid :])
    return (1 - z) * n + z * h


def gru_logits(p: dict, xs, sigmoid=bnp.sigmoid, tanh=np.tanh):
    hs = [np.zeros((GRU["batch"], GRU["hidden"]), np.float32) for _ in range(GRU["layers"])]
    for t in range(GRU["steps"]):
        inp = xs[t]
        for i in range(GRU["layers"]):
            hs[i] = _gru_cell(p, i, inp, hs[i], sigmoid, tanh)
            inp = hs[i]
    return inp @ p["Wo"] + p["bo"]


def gru_loss(p: dict, xs, labels):
    return bnp.cross_entropy(gru_logits(p, xs), labels)


def adam_update(p: dict, g: dict, state: dict, lr=1e-3, sqrt=np.sqrt):
    """Adam written out; ``state["t"]`` is the 1-based step number of this update."""
    b1, b2, eps = ADAM
    t = state["t"]
    c1, c2 = 1 - b1**t, 1 - b2**t
    m = {k: b1 * state["m"][k] + (1 - b1) * g[k] for k in p}
    v = {k: b2 * state["v"][k] + (1 - b2) * g[k] * g[k] for k in p}
    new = {k: p[k] - lr * (m[k] / c1) / (sqrt(v[k] / c2) + eps) for k in p}
    return new, {"m": m, "v": v, "t": t + 1}


def gru_step(p: dict, state: dict, xs, labels):
    loss, g = bpir.value_and_grad(gru_loss)(p, xs, labels)
    new, state = adam_update(p, g, state)
    return loss, new, state


def jax_steps():
    """(cnn_step, gru_step) written by hand in JAX, jitted."""
    import jax
    import jax.numpy as jnp
    from jax import lax

    def xent(logits, labels):
        logp = jax.nn.log_softmax(logits, axis=-1)
        return -jnp.mean(jnp.take_along_axis(logp, labels[:, None], axis=1))

    def conv_relu_pool(x, w, b):
        y = lax.conv_general_dilated(
            x, w, (1, 1), ((1, 1), (1, 1)), dimension_numbers=("NCHW", "OIHW", "NCHW")
        )
        y = jnp.maximum(y + b[None, :, None, None], 0)
        return lax.reduce_window(y, -jnp.inf, lax.max, (1, 1, 2, 2), (1, 1, 2, 2), "VALID")

    def cnn_loss_jax(p, x, labels):
        h = conv_relu_pool(conv_relu_pool(x, p["c1"], p["b1"]), p["c2"], p["b2"])
        return xent(h.reshape(h.shape[0], -1) @ p["W"] + p["b"], labels)

    @jax.jit
    def cnn(p, x, labels):
        loss, g = jax.value_and_grad(cnn_loss_jax)(p, x, labels)
        return loss, {k: p[k] - 0.1 * g[k] for k in p}

    def gru_loss_jax(p, xs, labels):
        return xent(gru_logits(p, xs, jax.nn.sigmoid, jnp.tanh), labels)

    @jax.jit
    def gru(p, state, xs, labels):
        loss, g = jax.value_and_grad(gru_loss_jax)(p, xs, labels)
        new, state = adam_update(p, g, state, sqrt=jnp.sqrt)
        return loss, new, state

    return cnn, gru


def torch_cnn_step():
    """The CNN step in PyTorch eager mode (autograd), or None when torch is not installed."""
    try:
        import torch
        import torch.nn.functional as tf
    except ImportError:
        return None

    def step(p: dict, x, labels, lr=0.1):
        p = {k: torch.from_numpy(v).requires_grad_() for k, v in p.items()}
        h = tf.max_pool2d(tf.relu(tf.conv2d(torch.from_numpy(x), p["c1"], p["b1"], padding=1)), 2)
        h = tf.max_pool2d(tf.relu(tf.conv2d(h, p["c2"], p["b2"], padding=1)), 2)
        loss = tf.cross_entropy(h.reshape(h.shape[0], -1) @ p["W"] + p["b"], torch.from_numpy(labels))
        loss.backward()
        with torch.no_grad():
            return loss.numpy(), {k: (v - lr * v.grad).numpy() for k, v in p.items()}

    return step
