"""Reverse-mode autodiff: gradients against jax.grad, the printed backward graph, second
order, custom_vjp and gradient checking, and the semantics of grad / value_and_grad.

Every model is written once as plain NumPy code (``np.*`` and ``bnp``) inside a factory that
takes the array namespace; the bpir version traces the NumPy one, the reference runs the same
code on ``jax.numpy`` with a small jax stand-in for ``bnp``. Everything is float64, with jax
in x64 mode. Gradients against jax run on the NumPy backend; second order, custom_vjp, gradient
checking and the tie rules run on every backend (``on(backend, fn, *args)``)."""

from __future__ import annotations

import inspect
import re
from types import SimpleNamespace

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import BACKENDS

import bpir
import bpir.numpy as bnp

RTOL_JAX = 1e-10  # first-order gradients against jax.grad
RTOL_HVP = 1e-8  # Hessian-vector products against jax
RTOL_EXACT = 1e-12  # against closed-form derivatives


# -- helpers ---------------------------------------------------------------------------------


@pytest.fixture(autouse=True, scope="module")
def jax_x64():
    """jax computes the references in float64; the previous setting is restored afterwards."""
    before = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", before)


def _jax_cross_entropy(logits, labels):
    logp = jax.nn.log_softmax(logits, axis=-1)
    return -jnp.mean(jnp.take_along_axis(logp, labels[:, None], axis=-1))


def _jax_conv2d(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    out = jax.lax.conv_general_dilated(
        x, w, (stride, stride), [(padding, padding)] * 2, rhs_dilation=(dilation, dilation),
        dimension_numbers=("NCHW", "OIHW", "NCHW"), feature_group_count=groups,
    )  # fmt: skip
    return out if b is None else out + b.reshape(1, -1, 1, 1)


def _jax_max_pool2d(x, kernel_size, stride=None, padding=0):
    k, s, p = kernel_size, stride or kernel_size, padding
    pads = [(0, 0), (0, 0), (p, p), (p, p)]
    return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, 1, k, k), (1, 1, s, s), pads)


def _jax_avg_pool2d(x, kernel_size, stride=None, padding=0):
    k, s, p = kernel_size, stride or kernel_size, padding
    x = jnp.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))  # padding counts in the divisor
    return jax.lax.reduce_window(x, 0.0, jax.lax.add, (1, 1, k, k), (1, 1, s, s), "VALID") / k**2


# jax stand-ins for the bnp functions the models use
JNN = SimpleNamespace(
    sigmoid=jax.nn.sigmoid,
    softmax=jax.nn.softmax,
    cross_entropy=_jax_cross_entropy,
    conv2d=_jax_conv2d,
    max_pool2d=_jax_max_pool2d,
    avg_pool2d=_jax_avg_pool2d,
)
NN = {np: bnp, jnp: JNN}  # the bnp namespace for each array namespace


def make_models(np, nn):
    """The test models, written once against an array namespace ``np`` (numpy or jax.numpy)
    and ``nn`` for bnp (bnp itself or JNN)."""

    def mlp_loss(p, x, labels):
        h = np.tanh(x @ p["W1"] + p["b1"])
        h = np.maximum(h @ p["W2"] + p["b2"], 0.0) + 0.1 * h @ p["W2"]
        return nn.cross_entropy(h @ p["W3"] + p["b3"], labels)

    def cnn_loss(p, x, labels):
        h = nn.conv2d(x, p["k1"], p["c1"], stride=1, padding=1)  # (N,4,8,8)
        h = nn.max_pool2d(np.maximum(h, 0.0), 2)  # (N,4,4,4)
        h = nn.conv2d(h, p["k2"], p["c2"], stride=2, padding=1)  # (N,6,2,2)
        h = np.maximum(h, 0.0).reshape(h.shape[0], -1)  # (N,24)
        return nn.cross_entropy(h @ p["W"] + p["b"], labels)

    def layer_norm_loss(x, gain, bias, target):
        mu = np.mean(x, axis=-1, keepdims=True)
        var = np.mean((x - mu) ** 2, axis=-1, keepdims=True)
        y = (x - mu) / np.sqrt(var + 1e-5) * gain + bias
        return np.sum(np.sin(y) * target)

    def attention_loss(q, k, v, target):
        d = q.shape[-1]
        scores = q @ np.swapaxes(k, -1, -2) / np.sqrt(float(d))
        out = nn.softmax(scores, axis=-1) @ v
        return np.sum(out * target)

    def lstm_loss(p, xs, target):
        hidden = p["Wh"].shape[0]
        h = np.zeros((xs.shape[1], hidden))
        c = np.zeros((xs.shape[1], hidden))
        for t in range(xs.shape[0]):
            z = xs[t] @ p["Wx"] + h @ p["Wh"] + p["b"]
            i = nn.sigmoid(z[:, :hidden])
            f = nn.sigmoid(z[:, hidden : 2 * hidden])
            g = np.tanh(z[:, 2 * hidden : 3 * hidden])
            o = nn.sigmoid(z[:, 3 * hidden :])
            c = f * c + i * g
            h = o * np.tanh(c)
        return np.mean((h - target) ** 2)

    return SimpleNamespace(
        mlp_loss=mlp_loss,
        cnn_loss=cnn_loss,
        layer_norm_loss=layer_norm_loss,
        attention_loss=attention_loss,
        lstm_loss=lstm_loss,
    )


BP = make_models(np, bnp)
JX = make_models(jnp, JNN)


def _normal(rng, *shape, scale=1.0):
    return rng.standard_normal(shape) * scale


def mlp_args(seed=0):
    rng = np.random.default_rng(seed)
    p = {
        "W1": _normal(rng, 5, 8, scale=0.5),
        "b1": _normal(rng, 8),
        "W2": _normal(rng, 8, 6, scale=0.5),
        "b2": _normal(rng, 6),
        "W3": _normal(rng, 6, 4, scale=0.5),
        "b3": _normal(rng, 4),
    }
    return p, _normal(rng, 7, 5), rng.integers(0, 4, size=7)


def cnn_args(seed=0):
    rng = np.random.default_rng(seed)
    p = {
        "k1": _normal(rng, 4, 2, 3, 3, scale=0.5),
        "c1": _normal(rng, 4, scale=0.1),
        "k2": _normal(rng, 6, 4, 3, 3, scale=0.3),
        "c2": _normal(rng, 6, scale=0.1),
        "W": _normal(rng, 24, 3, scale=0.3),
        "b": _normal(rng, 3),
    }
    return p, _normal(rng, 2, 2, 8, 8), rng.integers(0, 3, size=2)


def layer_norm_args(seed=0):
    rng = np.random.default_rng(seed)
    return _normal(rng, 4, 6), 1 + _normal(rng, 6, scale=0.1), _normal(rng, 6), _normal(rng, 4, 6)


def attention_args(seed=0):
    rng = np.random.default_rng(seed)
    return tuple(_normal(rng, 2, 5, 4) for _ in range(4))


def lstm_args(seed=0, steps=5, batch=3, n_in=4, hidden=3):
    rng = np.random.default_rng(seed)
    p = {
        "Wx": _normal(rng, n_in, 4 * hidden, scale=0.5),
        "Wh": _normal(rng, hidden, 4 * hidden, scale=0.5),
        "b": _normal(rng, 4 * hidden, scale=0.1),
    }
    return p, _normal(rng, steps, batch, n_in), _normal(rng, batch, hidden)


def to_jax(tree):
    return jax.tree_util.tree_map(jnp.asarray, tree)


def assert_trees_close(actual, expected, rtol, atol=0.0):
    """Same pytree structure (dict keys in any order: jax sorts them), same shapes and dtypes,
    values within rtol."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict) and set(actual) == set(expected), (actual, expected)
        for k in expected:
            assert_trees_close(actual[k], expected[k], rtol, atol)
    elif isinstance(expected, (tuple, list)):
        assert type(actual) is type(expected) and len(actual) == len(expected), (actual, expected)
        for a, e in zip(actual, expected):
            assert_trees_close(a, e, rtol, atol)
    else:
        a, e = np.asarray(actual), np.asarray(expected)
        assert a.shape == e.shape and a.dtype == e.dtype, (a.shape, a.dtype, e.shape, e.dtype)
        np.testing.assert_allclose(a, e, rtol=rtol, atol=atol)


def nodes_of(graph, op):
    return [n for n in graph.nodes if n.op == op]


def bpir_run(graph, args):
    """Run a graph on the NumPy backend."""
    from bpir.backends.numpy.backend import compile_graph

    return compile_graph(graph)[0](*args)


def on(backend: str, fn, *args):
    """``fn(*args)`` compiled for ``backend`` (bpir.grad and friends compose inside it)."""
    return bpir.compile(fn, backend=backend, example_args=args)(*args)


def _tree_vdot(a, b, xp):
    return sum(xp.sum(a[k] * b[k]) for k in a)


# -- 1. gradients of whole models, and of single ops, against jax.grad ---------------------

MODELS = {
    # name: (argument factory, argnums: every float argument the model has)
    "mlp_loss": (mlp_args, 0),
    "cnn_loss": (cnn_args, 0),
    "layer_norm_loss": (layer_norm_args, (0, 1, 2)),
    "attention_loss": (attention_args, (0, 1, 2)),
    "lstm_loss": (lstm_args, (0, 1)),
}


@pytest.mark.parametrize("name", list(MODELS))
def test_model_gradients_match_jax(name):
    """bpir.grad of each model agrees with jax.grad to rtol 1e-10 for every float parameter
    (argnums given as an int for pytree params, as a tuple for several array arguments)."""
    make_args, argnums = MODELS[name]
    args = make_args()
    got = bpir.grad(getattr(BP, name), argnums=argnums)(*args)
    want = jax.jit(jax.grad(getattr(JX, name), argnums=argnums))(*to_jax(args))
    assert_trees_close(got, want, rtol=RTOL_JAX)


@pytest.mark.parametrize("name", list(MODELS))
def test_model_values_match_jax(name):
    """value_and_grad's value is the model's loss (the traced code computes what jax does)."""
    make_args, argnums = MODELS[name]
    args = make_args(seed=1)
    value, _ = bpir.value_and_grad(getattr(BP, name), argnums=argnums)(*args)
    want = jax.jit(getattr(JX, name))(*to_jax(args))
    np.testing.assert_allclose(value, np.asarray(want), rtol=1e-12)


# name: (function of the namespace, argument shapes); every argument is differentiated
OP_CASES = {
    "strided_slice": (lambda np: lambda x: np.sum(np.sin(x[::2, 1::3])), [(5, 7)]),
    "int_index": (lambda np: lambda x: np.sum(np.sin(x[1]) + x[-1, 3]), [(5, 7)]),
    "newaxis_broadcast": (lambda np: lambda x: np.sum(np.sin(x[:, None, :] * x[None])), [(3, 4)]),
    "concatenate": (lambda np: lambda x, y: np.sum(np.sin(np.concatenate([x, y, x], axis=1))), [(2, 3), (2, 2)]),
    "stack": (lambda np: lambda x, y: np.sum(np.sin(np.stack([x, y], axis=1)) * np.arange(2.0)[:, None]),
              [(2, 3), (2, 3)]),
    "batched_matmul_broadcast": (lambda np: lambda a, b: np.sum(np.sin(a @ b)), [(2, 3, 4), (4, 5)]),
    "matvec": (lambda np: lambda a, b: np.sum(np.sin(a @ b)), [(3, 4), (4,)]),
    "vecmat_dot": (lambda np: lambda a, b: np.sin(b @ a @ b[:3]) + np.dot(b, b) ** 2, [(4, 3), (4,)]),
    "einsum": (lambda np: lambda a, b: np.sum(np.sin(np.einsum("bij,bkj->bik", a, b))), [(2, 3, 4), (2, 5, 4)]),
    "transpose": (lambda np: lambda x: np.sum(np.sin(np.transpose(x, (2, 0, 1))) * np.arange(4.0)[:, None, None]),
                  [(2, 3, 4)]),
    "reshape": (lambda np: lambda x: np.sum(np.sin(x.reshape(6, 2)) * np.arange(2.0)), [(3, 4)]),
    "clip_abs": (lambda np: lambda x: np.sum(np.clip(x, -0.5, 0.7) ** 2 + np.abs(x) ** 1.5), [(10,)]),
    "where_broadcast": (lambda np: lambda x, y: np.sum(np.where(x > 0, x, y) ** 2), [(3, 4), (4,)]),
    "pow": (lambda np: lambda x, p: np.sum((x**2 + 0.5) ** p), [(3, 4), ()]),
    "rsqrt_expm1_log1p": (lambda np: lambda x: np.sum(1 / np.sqrt(x**2 + 1) + np.expm1(x) * np.log1p(x**2)), [(5,)]),
    "cos_div": (lambda np: lambda x, y: np.sum(np.cos(x) / (y**2 + 1) + (2.0 - x) / (3.0 + y)), [(3,), (3,)]),
    "min_std_mean": (lambda np: lambda x: np.sum(np.min(x, axis=0) ** 2 + np.std(x, axis=1)[:, None]) + np.mean(x**3),
                     [(4, 5)]),
}  # fmt: skip
for _cfg in ({"stride": 2, "padding": 1}, {"stride": 3, "padding": 2}, {"dilation": 2, "padding": 1},
             {"groups": 2, "stride": 2}):  # fmt: skip
    OP_CASES["conv2d_" + "_".join(f"{k}{v}" for k, v in _cfg.items())] = (
        lambda np, cfg=_cfg: lambda x, w: np.sum(np.sin(NN[np].conv2d(x, w, **cfg))),
        [(1, 4, 7, 9), (6, 4 // _cfg.get("groups", 1), 3, 3)],
    )
for _kind in ("max", "avg"):
    for _k, _s, _p in ((2, 2, 0), (3, 2, 1), (3, 1, 1)):
        OP_CASES[f"{_kind}_pool_k{_k}_s{_s}_p{_p}"] = (
            lambda np, kind=_kind, k=_k, s=_s, p=_p: (
                lambda x: np.sum(np.sin(getattr(NN[np], kind + "_pool2d")(x, k, s, p)))
            ),
            [(2, 3, 7, 7)],
        )


@pytest.mark.parametrize("name", list(OP_CASES))
def test_op_gradients_match_jax(name):
    """Layout, contraction, reduction, elementwise and window ops (with broadcasting,
    strides, padding, dilation, groups) agree with jax.grad to rtol 1e-10."""
    make, shapes = OP_CASES[name]
    rng = np.random.default_rng(0)
    args = tuple(rng.standard_normal(s) for s in shapes)
    nums = tuple(range(len(args)))
    got = bpir.grad(make(np), argnums=nums)(*args)
    want = jax.jit(jax.grad(make(jnp), argnums=nums))(*to_jax(args))
    assert_trees_close(tuple(np.asarray(g) for g in got), want, rtol=RTOL_JAX)


def _bpir_hvp(make, args, vs):
    nums = tuple(range(len(args)))

    def grad_dot_v(args, vs):
        return sum(np.sum(g * v) for g, v in zip(bpir.grad(make(np), argnums=nums)(*args), vs))

    return tuple(np.asarray(h) for h in bpir.grad(grad_dot_v)(args, vs))


@pytest.mark.parametrize("name", [n for n in OP_CASES if "pool" not in n and "conv" not in n])
def test_op_hessian_vector_products_match_jax(name):
    """grad of <grad(f), v> (every VJP rule differentiated once more) agrees with jax's
    forward-over-reverse product to rtol 1e-8."""
    make, shapes = OP_CASES[name]
    rng = np.random.default_rng(1)
    args = tuple(rng.standard_normal(s) for s in shapes)
    vs = tuple(rng.standard_normal(s) for s in shapes)
    nums = tuple(range(len(args)))
    hvp = jax.jit(lambda a, v: jax.jvp(jax.grad(make(jnp), argnums=nums), a, v)[1])
    want = hvp(*to_jax((args, vs)))
    assert_trees_close(_bpir_hvp(make, args, vs), tuple(want), rtol=RTOL_HVP, atol=1e-13)


@pytest.mark.parametrize("name", [n for n in OP_CASES if "conv" in n or "avg_pool" in n])
def test_window_op_hessian_vector_products_match_differences_of_the_gradient(name):
    """conv2d's gradient ops and avg_pool2d's close under VJP: the HVP equals the central
    difference of the (jax-checked) first-order gradient along v. (XLA takes seconds to
    compile second-order convolutions, so jax is not the reference here.)"""
    make, shapes = OP_CASES[name]
    rng = np.random.default_rng(1)
    args = tuple(rng.standard_normal(s) for s in shapes)
    vs = tuple(rng.standard_normal(s) for s in shapes)
    grad = bpir.grad(make(np), argnums=tuple(range(len(args))))

    def central(h):
        plus = grad(*(a + h * v for a, v in zip(args, vs)))
        minus = grad(*(a - h * v for a, v in zip(args, vs)))
        return [(p - m) / (2 * h) for p, m in zip(plus, minus)]

    # Richardson extrapolation: O(h^4) truncation error, rounding ~ eps * |grad| / h
    coarse, fine = central(2e-4), central(1e-4)
    want = tuple((4 * f - c) / 3 for f, c in zip(fine, coarse))
    assert_trees_close(_bpir_hvp(make, args, vs), want, rtol=1e-6, atol=1e-8)


def test_max_pool_second_order_is_a_clear_error():
    """Differentiating max_pool2d's gradient is not supported, and says so."""
    x = np.random.default_rng(0).standard_normal((1, 1, 4, 4))
    with pytest.raises(NotImplementedError, match="max_pool2d"):
        bpir.grad(lambda x: np.sum(bpir.grad(lambda x: np.sum(bnp.max_pool2d(x, 2) ** 2))(x)))(x)


# -- 2. the printed backward graph of a 2-layer MLP -------------------------------------------


def mlp2_loss(W1, b1, W2, b2, x, y):
    h = np.tanh(x @ W1 + b1)
    out = h @ W2 + b2
    return np.mean((out - y) ** 2)


def mlp2_args(seed=0):
    rng = np.random.default_rng(seed)
    return (_normal(rng, 3, 16), _normal(rng, 16), _normal(rng, 16, 2), _normal(rng, 2),
            _normal(rng, 8, 3), _normal(rng, 8, 2))  # fmt: skip


HEADER_PARAM = re.compile(r"^\s+(residual|cotangent) %(\w+): (f64|i64)\[[\d,]*\]( from \"(.*)\")?,$")


def test_backward_graph_of_mlp_is_printed_with_residuals():
    """The backward graph's header marks residual and cotangent inputs; each residual names
    the forward value it is (and the source line of the model that computed it), and the
    forward graph returns the loss followed by exactly those residuals."""
    args = mlp2_args()
    fwd, bwd = bpir.vjp_graphs(mlp2_loss, *args, argnums=(0, 1, 2, 3))
    text = str(bwd)
    assert str(bpir.parse(text)) == text
    header = text.split(") -> (")[0].splitlines()[1:]
    params = [HEADER_PARAM.match(line) for line in header]
    assert all(params), header
    roles = [m.group(1) for m in params]
    n_res = roles.count("residual")
    assert n_res >= 3 and roles == ["residual"] * n_res + ["cotangent"], roles
    # the forward graph returns the loss, then the residuals in the backward's input order
    assert len(fwd.outputs) == 1 + n_res and fwd.outputs[0].shape == ()
    assert [v.type for v in fwd.outputs[1:]] == [v.type for v in bwd.inputs[:n_res]]
    assert [v.type for v in bwd.outputs] == [v.type for v in fwd.inputs[:4]]
    # every residual's origin is a forward value: an input, or a node with its source line
    fwd_text = str(fwd)
    lines, first = inspect.getsourcelines(mlp2_loss)
    model_lines = range(first, first + len(lines))
    for m in params[:n_res]:
        origin = m.group(5)
        assert origin, m.group(0)
        if origin.startswith("input "):
            assert origin[len("input %") :] in {"W1", "b1", "W2", "b2", "x", "y"}
            continue
        value, op, file, line = re.fullmatch(r"(%\d+) = (\w+) loc\((.+):(\d+)\)", origin).groups()
        assert re.search(rf"^\s+{value}: \S+ = {op} ", fwd_text, re.M), origin
        assert file.endswith("test_autodiff.py") and int(line) in model_lines, origin
    # residuals are read by the backward graph, and what it reads of the forward is a residual
    for v in bwd.inputs[:n_res]:
        assert any(v in n.inputs for n in bwd.nodes) or v in bwd.outputs
    # the hidden activation (tanh) and the weight W2 and input x are saved, not recomputed
    origins = [m.group(5) for m in params[:n_res]]
    assert any(" = tanh " in o for o in origins) and "input %W2" in origins and "input %x" in origins
    assert not nodes_of(bwd, "tanh")


def test_backward_graph_of_mlp_has_transposed_matmuls_and_one_reduction_per_bias():
    """dW = a^T @ g and dh = g @ W^T are matmuls whose transpose flags read the residual
    transposed (no transpose op is materialised); each bias gradient is exactly one reduce_sum
    over the batch of the same cotangent its weight gradient uses."""
    args = mlp2_args()
    _, bwd = bpir.vjp_graphs(mlp2_loss, *args, argnums=(0, 1, 2, 3))
    producers = bwd.producers()
    res = set(bwd.inputs)
    dW1, db1, dW2, db2 = (producers[v] for v in bwd.outputs)
    for dW in (dW1, dW2):
        assert dW.op == "matmul" and dW.attrs == {"transpose_a": True, "transpose_b": False}
        assert dW.inputs[0] in res
    assert not nodes_of(bwd, "transpose")
    # the hidden layer's cotangent: g2 @ W2^T, W2 a residual
    matmuls = nodes_of(bwd, "matmul")
    assert len(matmuls) == 3, [str(n) for n in matmuls]
    dh = [n for n in matmuls if n not in (dW1, dW2)][0]
    assert dh.attrs == {"transpose_a": False, "transpose_b": True} and dh.inputs[1] in res
    assert dh.inputs[0] is dW2.inputs[1]
    for db, dW in ((db1, dW1), (db2, dW2)):
        assert db.op == "reduce_sum" and db.attrs["axes"] == (0,) and not db.attrs["keepdims"]
        assert db.inputs[0] is dW.inputs[1]  # the bias sums the weight gradient's cotangent
    # no other reductions than the two bias sums and the loss's mean
    assert len(nodes_of(bwd, "reduce_sum")) == 2
    # and the split graphs compute the same gradient as bpir.grad
    fwd, bwd = bpir.vjp_graphs(mlp2_loss, *args, argnums=(0, 1, 2, 3))
    outs = bpir_run(fwd, args)
    grads = bpir_run(bwd, (*outs[1:], np.float64(1.0)))
    want = bpir.grad(mlp2_loss, argnums=(0, 1, 2, 3))(*args)
    for g, w in zip(grads, want):
        np.testing.assert_allclose(g, w, rtol=1e-13)


# -- 3. second order -------------------------------------------------------------------------

SECOND_DERIVATIVES = {
    "sin": (lambda x: np.sin(x), lambda x: -np.sin(x)),
    "cube": (lambda x: x**3, lambda x: 6 * x),
    "x_exp": (lambda x: np.exp(x) * x, lambda x: np.exp(x) * (x + 2)),
    "tanh": (lambda x: np.tanh(x), lambda x: -2 * np.tanh(x) * (1 - np.tanh(x) ** 2)),
    "log1p_sq": (lambda x: np.log(1 + x**2), lambda x: 2 * (1 - x**2) / (1 + x**2) ** 2),
    "sigmoid": (bnp.sigmoid, lambda x: bnp.sigmoid(x) * (1 - bnp.sigmoid(x)) * (1 - 2 * bnp.sigmoid(x))),
}


@pytest.mark.parametrize("name", list(SECOND_DERIVATIVES))
def test_grad_of_grad_matches_analytic_second_derivative(name, backend):
    """grad(grad(f)) differentiates the backward graph (ordinary IR) a second time; summing
    over a vector gives every element's own second derivative."""
    f, d2f = SECOND_DERIVATIVES[name]
    x = np.array([-1.3, 0.4, 2.1])
    got = on(backend, bpir.grad(lambda x: np.sum(bpir.grad(lambda x: np.sum(f(x)))(x))), x)
    np.testing.assert_allclose(got, d2f(x), rtol=RTOL_EXACT)
    got = on(backend, bpir.grad(bpir.grad(f)), np.float64(0.4))
    np.testing.assert_allclose(got, d2f(np.float64(0.4)), rtol=RTOL_EXACT)
    assert np.shape(got) == ()


def test_third_derivative_of_a_scalar_function(backend):
    """The gradient composes further: d^3/dx^3 sin(2x) = -8 cos(2x)."""
    got = on(backend, bpir.grad(bpir.grad(bpir.grad(lambda x: np.sin(2 * x)))), np.float64(0.3))
    np.testing.assert_allclose(got, -8 * np.cos(0.6), rtol=RTOL_EXACT)


SLOW_COMPILES = {"numba", "numba-cuda"}  # an MLP's second-order graph: ~30 s of Numba compiling


@pytest.mark.parametrize(
    "backend", [pytest.param(b, marks=pytest.mark.slow) if b in SLOW_COMPILES else b for b in BACKENDS]
)
def test_hessian_vector_product_of_mlp_loss_matches_jax(backend):
    """grad of <grad(loss)(p), v> w.r.t. p is H v; jax computes it forward-over-reverse."""
    p, x, labels = mlp_args(seed=3)
    rng = np.random.default_rng(4)
    v = {k: rng.standard_normal(a.shape) for k, a in p.items()}

    def grad_dot_v(p, v, x, labels):
        return _tree_vdot(bpir.grad(BP.mlp_loss)(p, x, labels), v, np)

    got = on(backend, bpir.grad(grad_dot_v), p, v, x, labels)
    jp, jv, jx, jl = to_jax((p, v, x, labels))
    hvp = jax.jit(lambda q, t: jax.jvp(lambda q: jax.grad(JX.mlp_loss)(q, jx, jl), (q,), (t,))[1])
    want = hvp(jp, jv)
    assert_trees_close(got, want, rtol=RTOL_HVP)


# -- 4. custom_vjp and gradient checking -----------------------------------------------------


def _lse_fwd(x):
    m = np.max(x)
    out = np.log(np.sum(np.exp(x - m))) + m
    return out, (x, out)


@bpir.custom_vjp
def logsumexp(x):
    m = np.max(x)
    return np.log(np.sum(np.exp(x - m))) + m


logsumexp.defvjp(_lse_fwd, lambda res, g: (g * np.exp(res[0] - res[1]),))


@bpir.custom_vjp
def wrong_logsumexp(x):
    m = np.max(x)
    return np.log(np.sum(np.exp(x - m))) + m


wrong_logsumexp.defvjp(_lse_fwd, lambda res, g: (2 * g * np.exp(res[0] - res[1]),))


def lse_model(x, w):
    return logsumexp(x * w) ** 2


def wrong_lse_model(x, w):
    return wrong_logsumexp(x * w) ** 2


def test_custom_vjp_logsumexp_is_stable_and_passes_check_grad(backend):
    """A stable log-sum-exp with its own VJP: its gradient is the softmax even where the
    naive formula overflows, and check_grad accepts it (per element and by directions)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal(6)
    big = x + 800.0  # exp(800) overflows float64
    g = on(backend, bpir.grad(logsumexp), big)
    np.testing.assert_allclose(g, np.exp(x) / np.exp(x).sum(), rtol=1e-12)
    report = bpir.check_grad(lse_model, x, rng.standard_normal(6), argnums=(0, 1), backend=backend)
    assert [r.path for r in report.rows] == ["x", "w"] and report.backend == backend
    assert all(r.mode == "elementwise" for r in report.rows)
    report = bpir.check_grad(lse_model, rng.standard_normal(100), rng.standard_normal(100),
                             backend=backend)  # fmt: skip
    assert report.rows[0].mode.startswith("directions=")
    # the custom rule is what runs: its gradient agrees with jax's logsumexp
    want = jax.grad(lambda x: jax.nn.logsumexp(x))(jnp.asarray(x))
    np.testing.assert_allclose(on(backend, bpir.grad(logsumexp), x), np.asarray(want), rtol=RTOL_JAX)


def test_check_grad_catches_a_wrong_custom_vjp(backend):
    """A custom VJP that doubles the cotangent is caught; the error names the input path,
    the element, the backend and the analytic and numeric values (analytic = 2 * numeric)."""
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal(5), rng.standard_normal(5)
    # the wrong rule is really used: exactly twice the right gradient
    wrong, right = on(backend, bpir.grad(wrong_lse_model), x, w), on(backend, bpir.grad(lse_model), x, w)
    np.testing.assert_allclose(wrong, 2 * right, rtol=1e-12)
    with pytest.raises(bpir.GradCheckError) as info:
        bpir.check_grad(wrong_lse_model, x, w, argnums=1, backend=backend)
    msg = str(info.value)
    assert "gradient mismatch for w at (" in msg and f"'{backend}'" in msg, msg
    analytic, numeric = (float(v) for v in re.search(r"analytic (\S+), numeric (\S+) ", msg).groups())
    np.testing.assert_allclose(analytic, 2 * numeric, rtol=1e-6)
    # inside a pytree argument, the path names the leaf
    with pytest.raises(bpir.GradCheckError, match=r"gradient mismatch for params\['x'\] at direction \d"):
        bpir.check_grad(lambda params: wrong_lse_model(params["x"], params["w"]),
                        {"x": np.ones(80), "w": rng.standard_normal(80)}, backend=backend)  # fmt: skip


def test_custom_vjp_is_differentiable_twice(backend):
    """grad of grad through a custom_vjp function: the output cotangent goes through the
    user's bwd, the residuals' cotangents through fwd's own rules (JAX's semantics). For the
    log-sum-exp this gives its Hessian diag(s) - s s^T (s = softmax(x))."""
    rng = np.random.default_rng(0)
    x, v = rng.standard_normal(5), rng.standard_normal(5)
    got = on(backend, bpir.grad(lambda x, v: np.sum(bpir.grad(logsumexp)(x) * v)), x, v)
    s = np.exp(x) / np.exp(x).sum()
    np.testing.assert_allclose(got, s * v - s * np.dot(s, v), rtol=RTOL_EXACT)

    # residuals that are the inputs themselves: d/da of grad(sum(mul(a, a)**2)) = 12 a**2
    @bpir.custom_vjp
    def mul(a, b):
        return a * b

    mul.defvjp(lambda a, b: (a * b, {"a": a, "b": b}), lambda r, g: (g * r["b"], g * r["a"]))
    a = np.array([1.0, -2.0, 3.0])
    got = on(backend, bpir.grad(lambda a: np.sum(bpir.grad(lambda a: np.sum(mul(a, a) ** 2))(a))), a)
    np.testing.assert_allclose(got, 12 * a**2, rtol=RTOL_EXACT)


def test_check_grad_passes_on_the_models():
    """check_grad (finite differences) agrees with the models' compiled gradients too."""
    p, x, labels = mlp_args()
    report = bpir.check_grad(BP.mlp_loss, p, x, labels, backend="numpy")
    assert len(report.rows) == 6
    args = layer_norm_args()
    report = bpir.check_grad(BP.layer_norm_loss, *args, argnums=(0, 1, 2), backend="numpy")
    assert len(report.rows) == 3


# -- 5. semantics of grad and value_and_grad -------------------------------------------------


def test_broadcasting_in_forward_sums_in_backward():
    """Operands broadcast in the forward pass get gradients of their own shape: the
    cotangent is summed over the broadcast axes (leading and size-1 ones, and scalars)."""
    rng = np.random.default_rng(0)
    args = (_normal(rng, 3, 1), _normal(rng, 4), np.float64(0.3), _normal(rng, 2, 1, 1))

    def f_in(np):
        return lambda a, b, c, d: np.sum(np.sin(a * b + c) * (a - b) * d + c * a)

    got = bpir.grad(f_in(np), argnums=(0, 1, 2, 3))(*args)
    assert [np.shape(g) for g in got] == [(3, 1), (4,), (), (2, 1, 1)]
    want = jax.jit(jax.grad(f_in(jnp), argnums=(0, 1, 2, 3)))(*to_jax(args))
    assert_trees_close(tuple(np.asarray(g) for g in got), want, rtol=RTOL_JAX)


def test_integer_inputs_get_no_gradient():
    """Integer (and boolean) leaves inside a pytree are not differentiated: their gradient is
    None; argnums naming an integer argument is an error, as in JAX; integer values entering
    float arithmetic do not propagate gradients back (the cast has none)."""
    x, n = np.arange(3.0) + 0.5, np.arange(3)

    def f(x, n):
        return np.sum(x * n)

    with pytest.raises(TypeError, match="floating-point"):
        bpir.grad(f, argnums=1)(x, n)
    with pytest.raises(TypeError, match="floating-point"):
        bpir.grad(f, argnums=(0, 1))(x, n)
    np.testing.assert_array_equal(bpir.grad(f)(x, n), n.astype(np.float64))
    tree = bpir.grad(lambda p: np.sum(p["w"] * p["k"]))({"w": x, "k": n})
    assert list(tree) == ["w", "k"] and tree["k"] is None
    np.testing.assert_array_equal(tree["w"], n.astype(np.float64))
    # and check_grad skips integer leaves rather than perturbing them
    report = bpir.check_grad(lambda p: np.sum(p["w"] * p["k"]), {"w": x, "k": n}, backend="numpy")
    assert [r.path for r in report.rows] == ["p['w']"]


def test_boolean_leaf_gets_no_gradient():
    """A bool leaf in a pytree gets None (joint emits a bool zero for it, then drops it)."""
    x = np.arange(3.0)
    tree = bpir.grad(lambda p: np.sum(p["w"]) * p["on"])({"w": x, "on": True})
    assert tree["on"] is None
    np.testing.assert_array_equal(tree["w"], np.ones(3))


def test_grad_needs_a_scalar_float_output():
    """grad of a non-scalar or integer-valued function is a TypeError saying so."""
    with pytest.raises(TypeError, match="one scalar"):
        bpir.grad(lambda x: x * 2)(np.ones(3))
    with pytest.raises(TypeError, match="floating-point output"):
        bpir.grad(lambda x: np.sum(x > 0))(np.ones(3))


def test_input_that_does_not_reach_the_output_gets_zero_gradient():
    """An unused argument, or one that reaches the output only through non-differentiable
    ops (comparisons, argmax), gets zeros of its own shape and dtype, and the backward graph
    does no work for it: its gradient is a broadcast constant zero."""
    x, y = np.array([0.5, -1.0, 2.0]), np.array([1.0, -2.0, 3.0])

    def f(x, y, unused):
        return np.sum(np.where(y > 0, x, 0.0) * 2.0 + np.argmax(y))

    gx, gy, gu = bpir.grad(f, argnums=(0, 1, 2))(x, y, np.ones((2, 2)))
    np.testing.assert_array_equal(gx, [2.0, 0.0, 2.0])
    for g, shape in ((gy, (3,)), (gu, (2, 2))):
        assert g.shape == shape and g.dtype == np.float64 and not np.any(g)
    _, bwd = bpir.vjp_graphs(f, x, y, np.ones((2, 2)), argnums=(1, 2))
    ops = sorted(n.op for n in bwd.nodes)
    assert ops == ["broadcast_to", "broadcast_to", "constant", "constant"], str(bwd)
    assert not bwd.inputs[:-1], "no residual is saved for a gradient that is zero"


def test_argnums_int_tuple_and_negative():
    """An int gives that argument's gradient; a tuple a tuple (also of length one);
    negative argnums count from the end; out of range is a ValueError."""
    a, b = np.array([1.0, 2.0]), np.array([3.0, -1.0])

    def f(a, b):
        return np.sum(a * a * b)

    ga = bpir.grad(f)(a, b)
    assert isinstance(ga, np.ndarray) and ga.shape == (2,)
    np.testing.assert_array_equal(ga, 2 * a * b)
    (only,) = bpir.grad(f, argnums=(0,))(a, b)
    np.testing.assert_array_equal(only, ga)
    gb, ga2 = bpir.grad(f, argnums=(1, 0))(a, b)
    np.testing.assert_array_equal(ga2, ga)
    np.testing.assert_array_equal(gb, a * a)
    np.testing.assert_array_equal(bpir.grad(f, argnums=-1)(a, b), gb)
    value, (g0, g1) = bpir.value_and_grad(f, argnums=(0, 1))(a, b)
    assert value == f(a, b) and np.shape(value) == ()
    with pytest.raises(ValueError, match="out of range"):
        bpir.grad(f, argnums=2)(a, b)


def test_pytree_params_come_back_with_the_same_structure():
    """Gradients of dict / list / tuple parameters have the parameters' structure, key
    order and leaf shapes; Python float leaves get scalar gradients."""
    rng = np.random.default_rng(0)
    params = {
        "layer": {"W": _normal(rng, 3, 2), "b": _normal(rng, 2)},
        "extra": [_normal(rng, 2), (_normal(rng, 2, 2), 0.5)],
    }

    def f_in(np):
        def f(p, x):
            h = np.tanh(x @ p["layer"]["W"] + p["layer"]["b"]) * p["extra"][0]
            return np.sum(h @ p["extra"][1][0]) * p["extra"][1][1]

        return f

    x = _normal(rng, 4, 3)
    got = bpir.grad(f_in(np))(params, x)
    assert list(got) == ["layer", "extra"] and list(got["layer"]) == ["W", "b"]
    assert isinstance(got["extra"], list) and isinstance(got["extra"][1], tuple)
    assert np.shape(got["extra"][1][1]) == ()
    want = jax.jit(jax.grad(f_in(jnp)))(to_jax(params), jnp.asarray(x))
    assert_trees_close(got, want, rtol=RTOL_JAX)


def train_step(params, x, labels):
    loss, grads = bpir.value_and_grad(BP.mlp_loss)(params, x, labels)
    return loss, {k: params[k] - 0.1 * grads[k] for k in params}


def test_value_and_grad_inside_a_compiled_training_step_is_one_graph():
    """value_and_grad called while tracing inlines the joint graph: the traced and the
    compiled training step are single graphs without call nodes, whose update is exactly
    p - lr * g with g from bpir.grad run on its own."""
    p, x, labels = mlp_args()
    traced = bpir.trace(train_step, p, x, labels)
    f = bpir.compile(train_step, backend="numpy")
    loss, new = f(p, x, labels)
    for graph in (traced, f.graph):
        assert not [n.op for n in graph.nodes if "call" in n.op], str(graph)
        assert len(graph.outputs) == 1 + len(p)
    # the backward pass is in the step: weight gradients are matmuls reading an operand transposed
    matmuls = nodes_of(traced, "matmul")
    assert len(matmuls) >= 3 * 3 and any(n.attrs["transpose_a"] for n in matmuls)
    g = bpir.grad(BP.mlp_loss)(p, x, labels)
    assert list(new) == list(p)
    for k in p:
        np.testing.assert_allclose(new[k], p[k] - 0.1 * g[k], rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(loss, BP.mlp_loss(p, x, labels), rtol=1e-13)


def test_grad_inside_a_trace_of_a_function_closing_over_traced_values():
    """grad of a closure over an outer traced value, called while tracing: the closed-over
    value becomes an input of the inlined joint graph, and is differentiable itself."""
    x, y = np.array([1.0, 2.0, 3.0]), np.array([0.5, -1.0, 2.0])

    def inner_grad(x, y):
        return bpir.grad(lambda x: np.sum(np.sin(x) * y * y))(x)

    np.testing.assert_allclose(inner_grad(x, y), np.cos(x) * y * y, rtol=RTOL_EXACT)  # eager
    f = bpir.compile(inner_grad, backend="numpy")
    np.testing.assert_allclose(f(x, y), np.cos(x) * y * y, rtol=RTOL_EXACT)
    got = bpir.grad(lambda x, y: np.sum(inner_grad(x, y)), argnums=1)(x, y)
    np.testing.assert_allclose(got, 2 * np.cos(x) * y, rtol=RTOL_EXACT)


def test_reductions_with_keepdims():
    """sum / mean / max / var with keepdims=True over one and several axes, and without."""
    rng = np.random.default_rng(0)
    x, w = _normal(rng, 2, 3, 4), _normal(rng, 2, 1, 4)

    def f_in(np):
        def f(x, w):
            s = np.sum(x, axis=1, keepdims=True) * w
            m = np.max(x, axis=(0, 2), keepdims=True) * np.mean(x, axis=-1, keepdims=True)
            v = np.var(x, axis=(1, 2), keepdims=True) + np.sum(x**2, axis=0)
            return np.sum(s) + np.sum(m**2) + np.sum(v * np.sin(x))

        return f

    got = bpir.grad(f_in(np), argnums=(0, 1))(x, w)
    want = jax.jit(jax.grad(f_in(jnp), argnums=(0, 1)))(*to_jax((x, w)))
    assert_trees_close(got, want, rtol=RTOL_JAX)


def test_max_ties_share_the_gradient_equally(backend):
    """reduce_max sends the gradient to every maximal element, ties sharing it equally
    (its VJP's documented rule, as in JAX), also per axis with keepdims."""
    x = np.array([[1.0, 3.0, 3.0, 2.0], [5.0, 5.0, 5.0, -1.0]])
    np.testing.assert_array_equal(on(backend, bpir.grad(lambda x: np.max(x)), x[0]), [0, 0.5, 0.5, 0])
    got = on(
        backend, bpir.grad(lambda x: np.sum(np.max(x, axis=1, keepdims=True) * np.array([[1.0], [3.0]]))), x
    )
    np.testing.assert_array_equal(got, [[0, 0.5, 0.5, 0], [1, 1, 1, 0]])
    want = jax.grad(lambda x: jnp.sum(jnp.max(x, axis=1, keepdims=True) * jnp.array([[1.0], [3.0]])))(x)
    np.testing.assert_array_equal(got, np.asarray(want))


def test_maximum_minimum_ties_split_in_half(backend):
    """np.maximum / np.minimum (and so relu at 0) split a tie's gradient 0.5 / 0.5, as JAX."""
    x, y = np.array([1.0, 2.0, 0.0]), np.array([1.0, 0.0, 0.0])
    gx, gy = on(backend, bpir.grad(lambda x, y: np.sum(np.maximum(x, y)), argnums=(0, 1)), x, y)
    np.testing.assert_array_equal(gx, [0.5, 1.0, 0.5])
    np.testing.assert_array_equal(gy, [0.5, 0.0, 0.5])
    gx, gy = on(backend, bpir.grad(lambda x, y: np.sum(np.minimum(x, y)), argnums=(0, 1)), x, y)
    np.testing.assert_array_equal(gx, [0.5, 0.0, 0.5])
    np.testing.assert_array_equal(gy, [0.5, 1.0, 0.5])
    np.testing.assert_array_equal(on(backend, bpir.grad(lambda x: np.sum(bnp.relu(x))), np.array([-1.0, 0.0, 2.0])),
                                  [0.0, 0.5, 1.0])  # fmt: skip
    want = jax.grad(lambda x: jnp.sum(jnp.maximum(x, 0.0)))(jnp.array([-1.0, 0.0, 2.0]))
    np.testing.assert_array_equal(np.asarray(want), [0.0, 0.5, 1.0])


def test_max_pool_ties_pick_the_first_maximal_element(backend):
    """max_pool2d's VJP sends each window's gradient to its first maximal element in
    row-major order (PyTorch's rule, documented at the op), not to every tied element."""
    x = np.array([[1.0, 1.0, 0.0, 2.0], [1.0, 0.0, 2.0, 2.0]])[None, None]
    w = np.array([3.0, 5.0])
    got = on(backend, bpir.grad(lambda x: np.sum(bnp.max_pool2d(x, 2) * w)), x)
    np.testing.assert_array_equal(got[0, 0], [[3.0, 0.0, 0.0, 5.0], [0.0, 0.0, 0.0, 0.0]])
    # overlapping windows (stride 1) whose first maximal element is shared accumulate there
    x = np.array([[1.0, 3.0, 3.0], [0.0, 3.0, 0.0]])[None, None]
    got = on(backend, bpir.grad(lambda x: np.sum(bnp.max_pool2d(x, 2, stride=1))), x)
    np.testing.assert_array_equal(got[0, 0], [[0.0, 2.0, 0.0], [0.0, 0.0, 0.0]])


def test_pow_with_a_negative_base_keeps_the_exponent_gradient_finite(backend):
    """d/dy x**y is defined as 0 where x <= 0 (pow's VJP; JAX gives NaN for x < 0);
    d/dx is y * x**(y-1) for any base."""
    x, y = np.array([-2.0, 0.0, 1.5]), np.array([3.0, 2.0, 2.5])
    gx, gy = on(backend, bpir.grad(lambda x, y: np.sum(x**y), argnums=(0, 1)), x, y)
    np.testing.assert_allclose(gx, y * x ** (y - 1), rtol=RTOL_EXACT)
    np.testing.assert_allclose(gy, [0.0, 0.0, 1.5**2.5 * np.log(1.5)], rtol=RTOL_EXACT)
