"""bpir.optim against optax: 20 steps on nested-dict params, eager and compiled on every CPU backend.

The optax reference runs with jax's x64 on, so that (as in bpir) bias corrections and schedules are
computed in float64 and cast to the parameters' dtype: with x64 off optax computes 1 - 0.999**t in
float32, whose cancellation alone moves Adam's float32 trajectory by ~1e-5 relative. Schedules are
given a float64 count on the optax side (JAX divides an int32 count in float32 even under x64)."""

from __future__ import annotations

import functools

import numpy as np
import pytest

import bpir
import bpir.optim as O  # noqa: N812 (short, as optax users write it)

jax = pytest.importorskip("jax")
optax = pytest.importorskip("optax")
jnp = jax.numpy

STEPS = 20
TOL = {"float32": 1e-6, "float64": 1e-12}


class _OptaxF64Schedules:
    """optax, with every schedule evaluated on a float64 count."""

    def __getattr__(self, name):
        f = getattr(optax, name)
        if name.endswith("_schedule") or name == "exponential_decay":
            return lambda *a, **k: (lambda s: lambda c: s(jnp.asarray(c, jnp.float64)))(f(*a, **k))
        return f


OPTAX = _OptaxF64Schedules()

OPTIMIZERS = {
    "sgd": lambda m: m.sgd(0.1),
    "sgd_momentum": lambda m: m.sgd(0.1, momentum=0.9),
    "sgd_nesterov": lambda m: m.sgd(0.1, momentum=0.9, nesterov=True),
    "adam": lambda m: m.adam(1e-2),
    "adam_nesterov": lambda m: m.adam(1e-2, nesterov=True),
    "adamw": lambda m: m.adamw(1e-2, weight_decay=0.1),
    "rmsprop": lambda m: m.rmsprop(1e-2),
    "rmsprop_momentum": lambda m: m.rmsprop(1e-2, momentum=0.9, eps_in_sqrt=False),
    "adagrad": lambda m: m.adagrad(0.1),
    "clip_chain_adam": lambda m: m.chain(m.clip_by_global_norm(0.5), m.adam(0.1)),
    "decayed_weights_sgd": lambda m: m.chain(m.add_decayed_weights(0.01), m.sgd(0.1)),
    "adam_exponential_decay": lambda m: m.adam(m.exponential_decay(0.1, 5, 0.5, transition_begin=2)),
    "sgd_staircase": lambda m: m.sgd(m.exponential_decay(0.1, 3, 0.5, staircase=True, end_value=0.02)),
    "sgd_cosine": lambda m: m.sgd(m.cosine_decay_schedule(0.1, 10, alpha=0.1), momentum=0.9),
    "adamw_warmup_cosine": lambda m: m.adamw(m.warmup_cosine_decay_schedule(0.0, 0.1, 5, 15, 0.01)),
    "sgd_constant": lambda m: m.sgd(m.constant_schedule(0.05)),
}


def _params(dtype):
    rng = np.random.default_rng(0)
    return {
        "layer": {"w": rng.standard_normal((3, 4)).astype(dtype), "b": rng.standard_normal(4).astype(dtype)},
        "out": [rng.standard_normal((4, 2)).astype(dtype)],
    }


def _noise(dtype):
    """Per-step gradient noise; the gradient is noise + 0.1 * params so it follows the params."""
    rng = np.random.default_rng(1)
    shapes = jax.tree.map(np.shape, _params(dtype))
    return [jax.tree.map(lambda s: rng.standard_normal(s).astype(dtype), shapes, is_leaf=lambda x: isinstance(x, tuple))
            for _ in range(STEPS)]  # fmt: skip


def _grads(noise, params):
    return jax.tree.map(lambda n, p: n + 0.1 * p, noise, params)


@functools.cache
def _optax_run(name, dtype):
    with jax.enable_x64(True):
        opt = OPTIMIZERS[name](OPTAX)
        p = jax.tree.map(jnp.asarray, _params(dtype))
        state = opt.init(p)
        for noise in _noise(dtype):
            updates, state = opt.update(_grads(noise, p), state, p)
            p = optax.apply_updates(p, updates)
        return jax.tree.map(np.asarray, p)


def _assert_matches(got, want, dtype):
    """Each leaf within TOL of the reference, relative to the leaf's largest magnitude."""
    for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
        assert g.dtype == w.dtype, (g.dtype, w.dtype)
        np.testing.assert_allclose(g, w, rtol=TOL[dtype], atol=TOL[dtype] * np.max(np.abs(w)))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_eager_matches_optax(name, dtype):
    opt = OPTIMIZERS[name](O)
    p = _params(dtype)
    state = opt.init(p)
    for noise in _noise(dtype):
        updates, state = opt.update(_grads(noise, p), state, p)
        p = O.apply_updates(p, updates)
    _assert_matches(p, _optax_run(name, dtype), dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("backend", ["numpy", "numba", "jax"])
def test_compiled_matches_optax(backend, dtype):
    """All optimizers in one compiled step (one compile per backend and dtype)."""
    if backend not in bpir.backends():
        pytest.skip(f"{backend} is not installed")
    opts = {k: f(O) for k, f in OPTIMIZERS.items()}

    def step(params, states, noise):
        new_p, new_s = {}, {}
        for k, opt in opts.items():
            updates, new_s[k] = opt.update(_grads(noise, params[k]), states[k], params[k])
            new_p[k] = O.apply_updates(params[k], updates)
        return new_p, new_s

    params = {k: _params(dtype) for k in opts}
    states = {k: opt.init(params[k]) for k, opt in opts.items()}
    noises = _noise(dtype)
    f = bpir.compile(step, backend=backend, example_args=(params, states, noises[0]))
    for noise in noises:
        params, states = f(params, states, noise)
    for k in opts:
        _assert_matches(params[k], _optax_run(k, dtype), dtype)
        assert int(states[k][0].get("count", STEPS) if isinstance(states[k][0], dict) else STEPS) == STEPS


def test_state_is_a_pytree_of_arrays_with_int32_count():
    state = O.adam(1e-3).init(_params("float32"))
    assert state[0]["count"].dtype == np.int32 and state[0]["count"].shape == ()
    assert state[0]["mu"]["layer"]["w"].shape == (3, 4)


def test_compiled_adam_step_is_one_fused_graph():
    """Loss, gradient and Adam update trace into one graph, which fusion shrinks to a few groups."""
    opt = O.adam(1e-2)

    def step(params, state, x, y):
        loss, grads = bpir.value_and_grad(lambda p: np.mean((np.tanh(x @ p["w"]) - y) ** 2))(params)
        updates, state = opt.update(grads, state, params)
        return O.apply_updates(params, updates), state, loss

    rng = np.random.default_rng(0)
    params = {"w": rng.standard_normal((3, 2)).astype(np.float32)}
    x, y = rng.standard_normal((8, 3)).astype(np.float32), rng.standard_normal((8, 2)).astype(np.float32)
    state = opt.init(params)
    f = bpir.compile(step, backend="numba", example_args=(params, state, x, y))
    g = f.graph
    # the new parameter and both moments come out of one fused elementwise group
    producer = {id(v): n for n in g.nodes for v in n.outputs}
    new_w, new_mu, new_nu = (producer[id(g.outputs[i])] for i in (0, 2, 3))
    assert new_w.op == "fused" and new_w is new_mu is new_nu
    p1, s1, loss = f(params, state, x, y)
    ref_p, ref_s = params, state
    _, grads = bpir.value_and_grad(lambda p: np.mean((np.tanh(x @ p["w"]) - y) ** 2))(params)
    u, ref_s = opt.update(grads, ref_s, ref_p)
    np.testing.assert_allclose(p1["w"], O.apply_updates(ref_p, u)["w"], rtol=1e-6)
    assert int(s1[0]["count"]) == 1


def test_mismatched_structure_names_the_path():
    opt = O.adam(1e-3)
    params = _params("float32")
    state = opt.init(params)
    grads = {"layer": {"w": params["layer"]["w"]}, "out": params["out"]}
    with pytest.raises(ValueError, match=r"updates.*\['layer'\]"):
        opt.update(grads, state, params)
    bad = {"layer": {"w": params["layer"]["w"], "b": np.zeros(5, np.float32)}, "out": params["out"]}
    with pytest.raises(ValueError, match=r"\['layer'\]\['b'\].*shapes \(5,\) and \(4,\)"):
        O.sgd(0.1).update(bad, O.sgd(0.1).init(params), params)
    with pytest.raises(ValueError, match=r"params and updates differ .*\['out'\]"):
        O.apply_updates(params, {"layer": params["layer"], "out": []})


def test_none_gradient_leaves_integer_params_alone():
    params = {"w": np.ones(3, np.float32), "steps": np.array(4, np.int64)}
    grads = bpir.grad(lambda p: np.sum(p["w"] * p["steps"]))(params)
    assert grads["steps"] is None
    opt = O.sgd(0.5)
    updates, _ = opt.update(grads, opt.init(params), params)
    new = O.apply_updates(params, updates)
    np.testing.assert_allclose(new["w"], np.ones(3) - 0.5 * 4)
    assert new["steps"] == 4
