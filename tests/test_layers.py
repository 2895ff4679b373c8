"""bpir.nn: layers against hand-written NumPy references, gradients by finite differences on
numpy and numba, initializers' statistics."""

from __future__ import annotations

import numpy as np
import pytest

import bpir
import bpir.numpy as bnp
from bpir import nn
from bpir import random as brandom

RNG = np.random.default_rng(0)


def _n(*shape, dtype="float64"):
    return RNG.standard_normal(shape).astype(dtype)


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


# -- references: written per gate / per head, independently of the layer code -------------------


def _ref_batch_norm(x, scale, bias, eps):
    axes = (0, *range(2, x.ndim))
    shape = [1] * x.ndim
    shape[1] = -1
    m = x.mean(axis=axes, keepdims=True)
    v = x.var(axis=axes, keepdims=True)
    return (
        (x - m) / np.sqrt(v + eps) * scale.reshape(shape) + bias.reshape(shape),
        x.mean(axis=axes),
        x.var(axis=axes),
    )


def _ref_lstm(p, xs, h, c):
    H = h.shape[1]
    W = {g: p["wi"][:, k * H : (k + 1) * H] for k, g in enumerate("ifgo")}
    U = {g: p["wh"][:, k * H : (k + 1) * H] for k, g in enumerate("ifgo")}
    b = {g: p["b"][k * H : (k + 1) * H] for k, g in enumerate("ifgo")}
    hs = []
    for t in range(xs.shape[1]):
        x = xs[:, t]
        i = _sigmoid(x @ W["i"] + h @ U["i"] + b["i"])
        f = _sigmoid(x @ W["f"] + h @ U["f"] + b["f"])
        g = np.tanh(x @ W["g"] + h @ U["g"] + b["g"])
        o = _sigmoid(x @ W["o"] + h @ U["o"] + b["o"])
        c = f * c + i * g
        h = o * np.tanh(c)
        hs.append(h)
    return h, c, np.stack(hs, 1)


def _ref_gru(p, xs, h):
    H = h.shape[1]
    sl = {g: slice(k * H, (k + 1) * H) for k, g in enumerate("rzn")}
    for t in range(xs.shape[1]):
        x = xs[:, t]
        r = _sigmoid(x @ p["wi"][:, sl["r"]] + p["bi"][sl["r"]] + h @ p["wh"][:, sl["r"]] + p["bh"][sl["r"]])
        z = _sigmoid(x @ p["wi"][:, sl["z"]] + p["bi"][sl["z"]] + h @ p["wh"][:, sl["z"]] + p["bh"][sl["z"]])
        n = np.tanh(
            x @ p["wi"][:, sl["n"]] + p["bi"][sl["n"]] + r * (h @ p["wh"][:, sl["n"]] + p["bh"][sl["n"]])
        )
        h = (1 - z) * n + z * h
    return h


def _ref_attention(p, q, k, v, heads, mask=None):
    n, tq, d = q.shape
    dh = d // heads
    Q, K, V = (a @ p[s]["w"] + p[s]["b"] for a, s in ((q, "q"), (k, "k"), (v, "v")))
    out = np.zeros((n, tq, d))
    for b in range(n):
        for h in range(heads):
            cols = slice(h * dh, (h + 1) * dh)
            s = Q[b, :, cols] @ K[b, :, cols].T / np.sqrt(dh)
            if mask is not None:
                s = np.where(mask[b, 0], s, -np.inf)
            w = np.exp(s - s.max(axis=1, keepdims=True))
            w /= w.sum(axis=1, keepdims=True)
            out[b, :, cols] = w @ V[b, :, cols]
    return out @ p["o"]["w"] + p["o"]["b"]


# -- forward values --------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(6, 3), (4, 3, 2, 5)])
def test_batch_norm_train_and_eval(shape):
    params, state = nn.batch_norm_init(3, "float64")
    params = {"scale": _n(3), "bias": _n(3)}
    state = {"mean": _n(3), "var": np.abs(_n(3)) + 0.5}
    x = _n(*shape)
    y, new = nn.batch_norm(params, state, x, train=True, momentum=0.8, eps=1e-5)
    ref, m, v = _ref_batch_norm(x, params["scale"], params["bias"], 1e-5)
    np.testing.assert_allclose(y, ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(new["mean"], 0.8 * state["mean"] + 0.2 * m, rtol=1e-12)
    np.testing.assert_allclose(new["var"], 0.8 * state["var"] + 0.2 * v, rtol=1e-12)
    y_eval, same = nn.batch_norm(params, state, x, train=False)
    shp = (1, 3) + (1,) * (len(shape) - 2)
    ref_eval = (x - state["mean"].reshape(shp)) / np.sqrt(state["var"].reshape(shp) + 1e-5)
    np.testing.assert_allclose(
        y_eval, ref_eval * params["scale"].reshape(shp) + params["bias"].reshape(shp), rtol=1e-12
    )
    assert same is state
    # compiled (running statistics come back as outputs)
    f = bpir.compile(lambda p, s, x: nn.batch_norm(p, s, x, train=True, momentum=0.8), "numba")
    y2, new2 = f(params, state, x)
    np.testing.assert_allclose(y2, ref, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(new2["var"], new["var"], rtol=1e-12)


def test_layer_norm_matches_reference():
    x = _n(4, 5, 6)
    p = {"scale": _n(6), "bias": _n(6)}
    ref = (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-5) * p["scale"] + p["bias"]
    np.testing.assert_allclose(nn.layer_norm(p, x), ref, rtol=1e-12)
    np.testing.assert_allclose(bpir.compile(nn.layer_norm, "jax")(p, x), ref, rtol=1e-10)


def test_lstm_and_gru_unrolled_match_per_gate_reference():
    key = brandom.key(1)
    xs = _n(3, 5, 4)
    lp = {k: v.astype("float64") for k, v in nn.lstm_init(key, 4, 6).items()}
    (h, c), hs = nn.unroll(nn.lstm_cell, lp, nn.lstm_carry(3, 6, "float64"), xs)
    rh, rc, rhs = _ref_lstm(lp, xs, np.zeros((3, 6)), np.zeros((3, 6)))
    np.testing.assert_allclose(hs, rhs, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(c, rc, rtol=1e-12, atol=1e-14)
    gp = {k: v.astype("float64") + 0.1 * _n(*v.shape) for k, v in nn.gru_init(key, 4, 6).items()}
    h_last, _ = nn.unroll(nn.gru_cell, gp, np.zeros((3, 6)), xs)
    np.testing.assert_allclose(h_last, _ref_gru(gp, xs, np.zeros((3, 6))), rtol=1e-12, atol=1e-14)
    f = bpir.compile(lambda p, xs: nn.unroll(nn.lstm_cell, p, nn.lstm_carry(3, 6, "float64"), xs)[1], "jax")
    np.testing.assert_allclose(f(lp, xs), rhs, rtol=1e-10, atol=1e-12)


def test_multi_head_attention_matches_per_head_reference():
    p = {
        k: {kk: vv.astype("float64") for kk, vv in v.items()}
        for k, v in nn.multi_head_attention_init(brandom.key(2), 8, 2).items()
    }
    q, kv = _n(2, 3, 8), _n(2, 4, 8)
    np.testing.assert_allclose(
        nn.multi_head_attention(p, q, kv, kv, 2), _ref_attention(p, q, kv, kv, 2), rtol=1e-12, atol=1e-12
    )
    mask = np.tril(np.ones((3, 4), bool))[None, None].repeat(2, 0)
    want = _ref_attention(p, q, kv, kv, 2, mask)
    f = bpir.compile(lambda p, q, kv, m: nn.multi_head_attention(p, q, kv, kv, 2, m), "numba")
    np.testing.assert_allclose(f(p, q, kv, mask), want, rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError, match="divisible"):
        nn.multi_head_attention_init(brandom.key(0), 8, 3)


def test_dense_conv_pool_embedding_dropout():
    key = brandom.key(3)
    p = nn.conv2d_init(key, 2, 3, 3)
    assert p["w"].shape == (3, 2, 3, 3) and p["w"].dtype == np.float32
    x = _n(2, 2, 6, 6, dtype="float32")
    np.testing.assert_allclose(nn.conv2d(p, x, padding=1), bnp.conv2d(x, p["w"], p["b"], padding=1))
    d = nn.dense_init(key, 5, 2)
    xd = _n(4, 5, dtype="float32")
    np.testing.assert_allclose(nn.dense(d, xd), xd @ d["w"] + d["b"], rtol=1e-6)
    e = nn.embedding_init(key, 10, 3)
    ids = np.array([[1, 9], [0, 1]])
    np.testing.assert_array_equal(nn.embedding(e, ids), e["table"][ids])
    xs = np.ones((50,), np.float32)
    np.testing.assert_array_equal(nn.dropout(key, xs, 0.5, train=False), xs)
    np.testing.assert_array_equal(nn.dropout(key, xs, 0.5), bnp.dropout(key, xs, 0.5))


def test_penalties():
    p = {"w": np.array([[1.0, -2.0]]), "b": np.array([3.0]), "n": np.array(4)}
    assert nn.l2_penalty(p) == 14.0 and nn.l1_penalty(p) == 6.0
    g = bpir.grad(lambda p: nn.l2_penalty(p) + 0.5 * nn.l1_penalty(p))(p)
    np.testing.assert_allclose(g["w"], [[2.5, -4.5]])


# -- initializers ----------------------------------------------------------------------------


def test_initializers_statistics_and_keys():
    key = brandom.key(0)
    w = nn.glorot_uniform(key, (400, 600))
    limit = np.sqrt(6 / 1000)
    assert w.dtype == np.float32 and np.abs(w).max() <= limit
    assert abs(w.var() - limit**2 / 3) < 0.05 * limit**2 / 3
    assert abs(nn.glorot_normal(key, (400, 600)).std() - np.sqrt(2 / 1000)) < 0.02 * np.sqrt(2 / 1000)
    assert abs(nn.he_normal(key, (16, 8, 3, 3)).std() - np.sqrt(2 / 72)) < 0.05 * np.sqrt(2 / 72)
    assert np.abs(nn.he_uniform(key, (300, 10))).max() <= np.sqrt(6 / 300)
    assert nn.fans((16, 8, 3, 3)) == (72, 144)
    np.testing.assert_array_equal(nn.glorot_uniform(key, (3, 4)), nn.glorot_uniform(key, (3, 4)))
    assert not np.array_equal(
        nn.glorot_uniform(key, (3, 4)), nn.glorot_uniform(brandom.split(key)[0], (3, 4))
    )
    assert nn.zeros(key, (2, 3), "float64").dtype == np.float64 and not nn.zeros(key, (2, 3)).any()
    assert abs(nn.normal(key, (1000,), stddev=0.1).std() - 0.1) < 0.01
    assert nn.xavier_uniform is nn.glorot_uniform and nn.kaiming_normal is nn.he_normal


def test_initializer_inside_a_compiled_function_uses_the_key_argument():
    f = bpir.compile(lambda k: nn.he_normal(k, (3, 4)), "numpy")
    k1, k2 = brandom.split(brandom.key(0))
    np.testing.assert_array_equal(f(k1), nn.he_normal(k1, (3, 4)))
    assert not np.array_equal(f(k1), f(k2))


# -- gradients by finite differences ---------------------------------------------------------


def _cnn_loss(p, x):
    h = bnp.relu(nn.conv2d(p["c"], x, padding=1))
    h = nn.avg_pool2d(nn.max_pool2d(h, 2), 1)
    return np.sum(np.tanh(nn.dense(p["d"], nn.flatten_batch(h))))


def _norms_loss(p, s, x):
    y, _ = nn.batch_norm(p["bn"], s, x, train=True)
    return np.sum(np.sin(nn.layer_norm(p["ln"], y)))


def _attention_loss(p, q, kv):
    return np.sum(np.sin(nn.multi_head_attention(p, q, kv, kv, 2)))


def _lstm_loss(p, xs):
    (h, _), _ = nn.unroll(nn.lstm_cell, p, nn.lstm_carry(2, 3, "float64"), xs)
    return np.sum(h * h)


def _gru_loss(p, xs):
    h, _ = nn.unroll(nn.gru_cell, p, np.zeros((2, 3)), xs)
    return np.sum(h * h)


def _embed_loss(p, ids):
    return np.sum(np.tanh(nn.embedding(p, ids))) + 0.1 * nn.l2_penalty(p)


def _f64(tree):
    return {
        k: _f64(v) if isinstance(v, dict) else np.asarray(v, np.float64) + 0.1 * _n(*np.shape(v))
        for k, v in tree.items()
    }


def _grad_cases():
    k = brandom.split(brandom.key(4), 6)
    bn, st = nn.batch_norm_init(3, "float64")
    return {
        "cnn": (
            _cnn_loss,
            (
                {"c": _f64(nn.conv2d_init(k[0], 2, 3, 3)), "d": _f64(nn.dense_init(k[1], 12, 2))},
                _n(2, 2, 4, 4),
            ),
        ),
        "norms": (_norms_loss, ({"bn": _f64(bn), "ln": _f64(nn.layer_norm_init(5))}, st, _n(4, 3, 5))),
        "attention": (
            _attention_loss,
            (_f64(nn.multi_head_attention_init(k[2], 4, 2)), _n(2, 3, 4), _n(2, 2, 4)),
        ),
        "lstm": (_lstm_loss, (_f64(nn.lstm_init(k[3], 2, 3)), _n(2, 4, 2))),
        "gru": (_gru_loss, (_f64(nn.gru_init(k[4], 2, 3)), _n(2, 4, 2))),
        "embedding": (_embed_loss, (_f64(nn.embedding_init(k[5], 5, 3)), np.array([[0, 4, 4], [2, 0, 1]]))),
    }


@pytest.mark.parametrize("backend", ["numpy", "jax"])
@pytest.mark.parametrize("case", ["cnn", "norms", "attention", "lstm", "gru", "embedding"])
def test_layer_gradients_by_finite_differences(case, backend):
    fn, args = _grad_cases()[case]
    report = bpir.check_grad(fn, *args, backend=backend)
    assert report.rows
