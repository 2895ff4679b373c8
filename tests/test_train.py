"""bpir.train.fit / plot_history, and grad/value_and_grad with has_aux (eager, traced, compiled)."""

from __future__ import annotations

import numpy as np
import pytest

import bpir
import bpir.numpy as bnp
from bpir import nn, optim
from bpir import random as brandom

jax = pytest.importorskip("jax")


def _loss_aux(w, x, y):
    logits = x @ w
    loss = bnp.cross_entropy(logits, y)
    return loss, {"correct": np.sum(np.argmax(logits, axis=1) == y), "logits": logits}


def _data():
    rng = np.random.default_rng(0)
    return rng.standard_normal((3, 4)), rng.standard_normal((6, 3)), rng.integers(0, 4, 6)


def test_has_aux_matches_jax_eager_and_compiled():
    w, x, y = _data()

    def jax_loss(w):
        logits = x @ w
        lp = jax.nn.log_softmax(logits)
        return -jax.numpy.mean(lp[np.arange(6), y]), logits

    with jax.enable_x64(True):
        (jl, jlogits), jg = jax.value_and_grad(jax_loss, has_aux=True)(w)
    (loss, aux), g = bpir.value_and_grad(_loss_aux, has_aux=True)(w, x, y)
    np.testing.assert_allclose(loss, jl, rtol=1e-12)
    np.testing.assert_allclose(g, jg, rtol=1e-10)
    np.testing.assert_allclose(aux["logits"], jlogits, rtol=1e-12)
    assert int(aux["correct"]) == int(np.sum(np.argmax(jlogits, 1) == y))
    g2, aux2 = bpir.grad(_loss_aux, has_aux=True)(w, x, y)
    np.testing.assert_allclose(g2, g, rtol=1e-12)
    assert aux2["logits"].shape == (6, 4)

    def step(w, x, y):  # the gradient with aux inside a compiled step: one graph
        (loss, aux), g = bpir.value_and_grad(_loss_aux, has_aux=True)(w, x, y)
        return w - 0.1 * g, loss, aux["correct"]

    for backend in ("numpy", "jax"):
        f = bpir.compile(step, backend, example_args=(w, x, y))
        w1, l1, c1 = f(w, x, y)
        np.testing.assert_allclose(w1, w - 0.1 * np.asarray(jg), rtol=1e-10)
        np.testing.assert_allclose(l1, jl, rtol=1e-12)
        assert int(c1) == int(aux["correct"])
    assert sum(n.op == "matmul" for n in bpir.trace(step, w, x, y).nodes) >= 2  # forward and backward inlined


def test_has_aux_errors():
    w, x, y = _data()
    with pytest.raises(TypeError, match="pair"):
        bpir.value_and_grad(lambda w: np.sum(w), has_aux=True)(w)
    with pytest.raises(TypeError, match="scalar"):
        bpir.value_and_grad(lambda w: (w * 2, w), has_aux=True)(w)


def test_has_aux_carries_batch_norm_statistics():
    params, state = nn.batch_norm_init(3, "float64")
    x = np.random.default_rng(1).standard_normal((8, 3)) * 2 + 1

    def loss(p, s, x):
        y, new_s = nn.batch_norm(p, s, x, train=True)
        return np.sum(y**2 * np.arange(1.0, 4.0)), new_s

    f = bpir.compile(bpir.value_and_grad(loss, has_aux=True), "jax")
    (val, new_state), g = f(params, state, x)
    np.testing.assert_allclose(new_state["mean"], 0.1 * x.mean(0), rtol=1e-12)
    np.testing.assert_allclose(new_state["var"], 0.9 + 0.1 * x.var(0), rtol=1e-12)
    np.testing.assert_allclose(g["bias"], np.zeros(3), atol=1e-10)  # sum of (x-m)/s is zero


def _toy():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 5)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(np.int64)
    return x, y


def _predict(p, x):
    return nn.dense(p, x)


def test_fit_learns_and_agrees_across_backends(tmp_path):
    x, y = _toy()
    params = nn.dense_init(brandom.key(0), 5, 2)
    hist = {}
    for backend in ("numpy", "numba", "jax"):
        r = bpir.train.fit(lambda p, x, y: bnp.cross_entropy(_predict(p, x), y), params, optim.adam(0.05), (x, y),
                           epochs=4, batch_size=16, predict_fn=_predict, eval_data=(x, y), backend=backend,
                           progress=False)  # fmt: skip
        hist[backend] = r.history
        assert r.params["w"].dtype == np.float32
    h = hist["numpy"]
    assert h["epoch"] == [1, 2, 3, 4] and h["loss"][-1] < h["loss"][0] and h["eval_accuracy"][-1] > 0.9
    for b in ("numba", "jax"):
        np.testing.assert_allclose(hist[b]["loss"], h["loss"], rtol=1e-5)
    bpir.train.plot_history(h, tmp_path / "h.png")
    assert (tmp_path / "h.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_fit_with_state_and_key():
    """Batch-norm statistics come back through the step; dropout draws a fresh key per step."""
    x, y = _toy()
    k1, k2 = brandom.split(brandom.key(0))
    params = {"bn": nn.batch_norm_init(5)[0], "d": nn.dense_init(k1, 5, 2)}
    state = nn.batch_norm_init(5)[1]

    def loss(p, s, key, x, y):
        h, s = nn.batch_norm(p["bn"], s, x, train=True)
        return bnp.cross_entropy(nn.dense(p["d"], nn.dropout(key, h, 0.2)), y), s

    def predict(p, s, x):
        return nn.dense(p["d"], nn.batch_norm(p["bn"], s, x, train=False)[0])

    r = bpir.train.fit(loss, params, optim.adam(0.05), (x, y), epochs=5, batch_size=16, state=state, key=k2,
                       predict_fn=predict, eval_data=(x, y), backend="numpy", progress=False)  # fmt: skip
    assert not np.allclose(r.state["mean"], 0)
    assert r.history["loss"][-1] < r.history["loss"][0] and r.history["eval_accuracy"][-1] > 0.7
    r2 = bpir.train.fit(loss, params, optim.adam(0.05), (x, y), epochs=5, batch_size=16, state=state, key=k2,
                        backend="numpy", progress=False)  # fmt: skip
    assert r2.history["loss"] == r.history["loss"]  # same key, same shuffle: reproducible


def test_fit_bad_input():
    x, y = _toy()
    p = nn.dense_init(brandom.key(0), 5, 2)
    with pytest.raises(ValueError, match="batch_size"):
        bpir.train.fit(
            lambda p, x, y: bnp.cross_entropy(_predict(p, x), y), p, optim.sgd(0.1), (x, y), batch_size=0
        )
    with pytest.raises(ValueError, match="samples"):
        bpir.train.fit(lambda p, x, y: bnp.cross_entropy(_predict(p, x), y), p, optim.sgd(0.1), (x, y[:3]))
