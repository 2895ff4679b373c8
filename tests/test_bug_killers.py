"""Tests aimed at plausible one-line bugs that the op suite let through (issue 14): each one
fails if the bug named in its docstring is planted (tests/mutation/README.md lists them)."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import assert_close

import bpir
import bpir.numpy as bnp
from bpir.autodiff import joint
from bpir.backend_registry import backend_module
from bpir.builder import Builder
from bpir.types import TensorType


@pytest.fixture(autouse=True, scope="module")
def jax_x64():
    """jax computes the references in float64; the previous setting is restored afterwards."""
    before = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", before)


def compiled(fn, backend, *args):
    return bpir.compile(fn, backend=backend, example_args=args)(*args)


def run_graph(graph, backend, *args):
    run, _ = backend_module(backend).compile_graph(bpir.optimize(graph))
    return [np.asarray(r) for r in run(*args)]


# -- simplification --------------------------------------------------------------------------


def test_zero_minus_x_is_the_negation(backend, rng):
    """``0 - x`` is -x (simplify's left identities are add and mul only, never sub)."""
    x = rng.standard_normal((3, 4))
    assert_close(compiled(lambda x: 0.0 - x, backend, x), -x, "float64")
    i = rng.integers(-5, 5, size=(3, 4))
    assert_close(compiled(lambda i: 0 - i, backend, i), -i, "int64")
    b = Builder("g")
    v = b.input(TensorType((3, 4), "f64"))
    g = b.finish([b.sub(b.broadcast_to(b.const(0.0, "f64"), (3, 4)), v)])
    assert_close(run_graph(g, backend, x)[0], -x, "float64")


# -- reductions ------------------------------------------------------------------------------


def test_max_of_all_negative_rows(backend, rng):
    """A (fused) max whose every element is negative: the accumulator starts at -inf, not 0."""
    x = rng.standard_normal((3, 4))
    assert_close(compiled(lambda x: np.max(x - 5, axis=1), backend, x), np.max(x - 5, axis=1), "float64")
    assert_close(compiled(lambda x: np.max(x * 2 - 7), backend, x), np.max(x * 2 - 7), "float64")
    want = np.max(x - 5, axis=0, keepdims=True)
    assert_close(compiled(lambda x: np.max(x - 5, axis=0, keepdims=True), backend, x), want, "float64")
    i = rng.integers(-9, -2, size=(3, 4))
    assert_close(compiled(lambda i: np.max(i * 3, axis=1), backend, i), np.max(i * 3, axis=1), "int64")
    # and the mirror image: a min of all-positive values
    assert_close(compiled(lambda x: np.min(x + 5, axis=1), backend, x), np.min(x + 5, axis=1), "float64")


@pytest.mark.parametrize("dtype", [np.int64, np.int32])
def test_float_ops_on_integers_give_float64_as_numpy(backend, dtype):
    """NumPy types ``mean`` and float ufuncs of integers as float64: 2**24 + 1 survives,
    a float32 result would round it to 2**24."""
    i = np.array([16777217, 16777219], dtype=dtype)
    for fn in (lambda i: np.mean(i), lambda i: np.mean(i, axis=0, keepdims=True), lambda i: i.mean()):
        got = compiled(fn, backend, i)
        assert np.asarray(got).dtype == np.float64
        np.testing.assert_array_equal(got, fn(i))
    one = np.array([16777217], dtype=dtype)
    np.testing.assert_array_equal(compiled(lambda i: np.mean(i), backend, one), 16777217.0)
    for ufunc in (np.sqrt, np.exp, np.log, np.sin, np.cos, np.tanh, np.log1p):
        j = np.array([1, 2, 7, 16777217], dtype=dtype) if ufunc not in (np.exp,) else np.array([1, 3, 9])
        got = compiled(ufunc, backend, j.astype(dtype))
        assert np.asarray(got).dtype == np.float64, ufunc
        assert_close(got, ufunc(j.astype(dtype)), "float64")


# -- gradients ------------------------------------------------------------------------------


def test_erf_value_and_gradient(backend):
    """erf and its gradient 2/sqrt(pi) exp(-x^2) (positive: a flipped sign is caught)."""
    b = Builder("erf")
    x = b.input(TensorType((5,), "f64"))
    y = b.erf(x)
    g = b.finish([b.reduce_sum(b.mul(y, b.const(np.arange(1.0, 6.0))), axes=(0,), keepdims=False)])
    xs = np.array([-1.5, -0.3, 0.0, 0.4, 2.0])
    value, grad = run_graph(joint(g, [0]), backend, xs)
    erf = np.array([math.erf(v) for v in xs])
    np.testing.assert_allclose(value, np.sum(erf * np.arange(1.0, 6.0)), rtol=1e-12)
    np.testing.assert_allclose(
        grad, 2 / math.sqrt(math.pi) * np.exp(-(xs**2)) * np.arange(1.0, 6.0), rtol=1e-12
    )


def test_abs_gradient_on_signed_inputs(backend, rng):
    """d|x|/dx = sign(x) on inputs of both signs (the op suite's abs case is all positive)."""
    x = rng.standard_normal((3, 4))
    x = np.sign(x) * (np.abs(x) + 0.1)
    w = rng.standard_normal((3, 4))
    got = compiled(bpir.grad(lambda x, w: np.sum(np.abs(x) * w)), backend, x, w)
    np.testing.assert_allclose(got, np.sign(x) * w, rtol=1e-12)
    bpir.check_grad(lambda x: np.sum(np.abs(x) * w), x, backend=backend)


def _wrong_by(factor):
    @bpir.custom_vjp
    def f(x):
        return np.sum(np.sin(x))

    f.defvjp(lambda x: (np.sum(np.sin(x)), x), lambda x, g: (factor * g * np.cos(x),))
    return f


def test_check_grad_catches_a_gradient_one_percent_off(backend, rng):
    """check_grad's float64 tolerance (rtol 1e-6) catches a custom VJP that is 1% off and
    accepts the right one."""
    x = rng.standard_normal(6)
    bpir.check_grad(_wrong_by(1.0), x, backend=backend)
    with pytest.raises(bpir.GradCheckError):
        bpir.check_grad(_wrong_by(1.01), x, backend=backend)
    with pytest.raises(bpir.GradCheckError):
        bpir.check_grad(_wrong_by(1.0 + 1e-4), x, backend=backend)


# -- the numba workspace --------------------------------------------------------------------


def _transposed_view_program(a, b, c):
    p = a @ b  # a workspace buffer
    t = p.T  # a view of it, read after p's last direct use
    q = a @ c  # same shape and dtype: may take a slot only once t is dead
    return t @ q + t


def test_workspace_slot_is_not_reused_while_a_view_is_live(backend, rng):
    """A buffer stays reserved while a transposed view of it is live (numba's workspace)."""
    a, b, c = (rng.standard_normal((4, 4)) for _ in range(3))
    want = _transposed_view_program(a, b, c)
    assert_close(compiled(_transposed_view_program, backend, a, b, c), want, "float64")


# -- windows: independent references (jax.lax), all-negative padded windows -------------------


def _jax_conv(x, w, stride, padding, dilation, groups):
    return jax.lax.conv_general_dilated(
        x, w, (stride, stride), [(padding, padding)] * 2, rhs_dilation=(dilation, dilation),
        dimension_numbers=("NCHW", "OIHW", "NCHW"), feature_group_count=groups,
    )  # fmt: skip


def _jax_max_pool(x, k, s, p):
    pads = [(0, 0), (0, 0), (p, p), (p, p)]
    return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, 1, k, k), (1, 1, s, s), pads)


def _jax_avg_pool(x, k, s, p):  # padding counts in the divisor (PyTorch's count_include_pad)
    pads = [(0, 0), (0, 0), (p, p), (p, p)]
    return jax.lax.reduce_window(x, 0.0, jax.lax.add, (1, 1, k, k), (1, 1, s, s), pads) / k**2


CONVS = [  # x shape, w shape, stride, padding, dilation, groups
    ((2, 3, 5, 5), (4, 3, 3, 3), 1, 1, 1, 1),
    ((1, 4, 7, 6), (4, 2, 2, 3), 2, 1, 2, 2),
    ((1, 2, 6, 5), (3, 2, 3, 2), 2, 0, 1, 1),
]


@pytest.mark.parametrize("conf", CONVS, ids=lambda c: "s{}p{}d{}g{}".format(*c[2:]))
def test_conv2d_matches_jax_lax(backend, conf, rng):
    """conv2d and both its gradients against jax.lax.conv_general_dilated and jax.grad."""
    xs, ws, s, p, d, g = conf
    x, w, ct = rng.standard_normal(xs), rng.standard_normal(ws), None
    want = np.asarray(_jax_conv(x, w, s, p, d, g))
    ct = rng.standard_normal(want.shape)

    def loss(x, w):
        return np.sum(bnp.conv2d(x, w, stride=s, padding=p, dilation=d, groups=g) * ct)

    got = compiled(lambda x, w: bnp.conv2d(x, w, stride=s, padding=p, dilation=d, groups=g), backend, x, w)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
    gx, gw = compiled(bpir.grad(loss, argnums=(0, 1)), backend, x, w)
    jx, jw = jax.grad(lambda x, w: jnp.sum(_jax_conv(x, w, s, p, d, g) * ct), argnums=(0, 1))(x, w)
    np.testing.assert_allclose(gx, np.asarray(jx), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(gw, np.asarray(jw), rtol=1e-10, atol=1e-12)


POOLS = {"max": (bnp.max_pool2d, _jax_max_pool), "avg": (bnp.avg_pool2d, _jax_avg_pool)}


@pytest.mark.parametrize("pool", list(POOLS))
@pytest.mark.parametrize(("k", "s", "p"), [(3, 2, 1), (2, 1, 1), (2, 2, 0)])
def test_pools_match_jax_lax_on_all_negative_inputs(backend, pool, k, s, p, rng):
    """max_pool2d pads with -inf (an all-negative border window keeps its max), avg_pool2d
    counts padding in the divisor; values and gradients against jax.lax.reduce_window."""
    bfn, jfn = POOLS[pool]
    x = -(np.abs(rng.standard_normal((1, 2, 5, 5))) + 1.0)
    want = np.asarray(jfn(x, k, s, p))
    got = compiled(lambda x: bfn(x, k, stride=s, padding=p), backend, x)
    np.testing.assert_allclose(got, want, rtol=1e-12)
    ct = np.arange(want.size, dtype=np.float64).reshape(want.shape) + 1.0
    gx = compiled(bpir.grad(lambda x: np.sum(bfn(x, k, stride=s, padding=p) * ct)), backend, x)
    jx = jax.grad(lambda x: jnp.sum(jfn(x, k, s, p) * ct))(x)
    np.testing.assert_allclose(gx, np.asarray(jx), rtol=1e-12)


def test_integer_reciprocal_truncates_as_numpy_does(backend):
    """np.reciprocal of integers truncates in NumPy (found by this file's dtype test): 1 and -1 are
    their own reciprocal, everything else but 0 gives 0; never a float result."""
    i = np.array([1, 2, 4, -1, -3, 7])
    got = compiled(np.reciprocal, backend, i)
    np.testing.assert_array_equal(np.asarray(got), np.reciprocal(i))
    assert np.asarray(got).dtype == np.int64


@pytest.mark.parametrize("axes", [(2,), (0, 2), (1,)], ids=str)
def test_fused_reductions_over_rank_3(backend, axes, rng):
    """Fused sum / max prologues over a 3-D iteration space: trailing reductions with two kept
    axes (the flat position splits into both indices) and leading / strided ones."""
    x = rng.standard_normal((2, 3, 5))

    def fn(x):
        return np.sum(np.exp(x) * 2.0, axis=axes), np.max(x * 3.0 - 7.0, axis=axes, keepdims=True)

    for g, w in zip(compiled(fn, backend, x), fn(x)):
        assert_close(g, w, "float64")


def test_numba_trailing_reduction_keeps_a_scalar_accumulator():
    """A fused reduction over trailing axes walks each output position once with a scalar
    accumulator (the fast form), not the general accumulator-array walk."""
    x = np.ones((3, 4))
    f = bpir.compile(lambda x: np.sum(np.exp(x), axis=1), backend="numba", example_args=(x,))
    kernel = f.source[f.source.index("def fused_") :]
    assert "acc0 = np.float64(0)" in kernel and "np.full" not in kernel, kernel


def test_slice_gradient_inside_the_array(backend, rng):
    """A slice that stops short of each end scatters its gradient back to the right places
    (the op suite's slices all run to the end, where the pad amounts are 0)."""
    x = rng.standard_normal((6, 7))
    w = rng.standard_normal((2, 2))
    got = compiled(bpir.grad(lambda x: np.sum(x[1:3, 1:5:2] * w)), backend, x)
    want = np.zeros_like(x)
    want[1:3, 1:5:2] = w
    np.testing.assert_array_equal(got, want)


def test_a_reduction_prologue_is_not_materialised():
    """Fusion turns an elementwise chain that only feeds a reduction into the reduction's
    prologue: one fused node, one (reduced) output, no full-size copy of the chain's result;
    a chain value also used elsewhere stays an output."""
    x = np.ones((3, 4))
    g = bpir.optimize(bpir.trace(lambda x: np.sum(np.exp(x) * 2.0, axis=1), x))
    [node] = g.nodes
    assert node.op == "fused" and len(node.outputs) == 1 and node.attrs["unreduced"] == 0
    assert node.outputs[0].shape == (3,)
    g = bpir.optimize(bpir.trace(lambda x: (np.sum(np.exp(x), axis=1), np.exp(x)), x))
    [node] = g.nodes
    assert [v.shape for v in node.outputs] == [(3, 4), (3,)] and node.attrs["unreduced"] == 1


@pytest.mark.parametrize("fused", [False, True], ids=["alone", "fused"])
@pytest.mark.parametrize("dtype", ["i32", "i8", "u32", "bool"])
def test_integer_reduce_sum_keeps_the_ir_dtype(backend, rng, dtype, fused):
    """``reduce_sum`` of a small integer in the IR stays that integer (NumPy's ``sum`` widens it
    to int64 unless told the dtype), alone or as a fused group's epilogue; the reference
    interpreter is the oracle."""
    from bpir import interpret

    if dtype == "bool":
        x = rng.integers(0, 2, size=(3, 4)).astype(bool)
    else:
        x = rng.integers(0, 5, size=(3, 4)).astype(TensorType((), dtype).np_dtype)
    b = Builder("g")
    v = b.input(TensorType((3, 4), dtype))
    w = b.emit("mul", v, v) if fused else v
    g = b.finish([b.emit("reduce_sum", w, axes=(1,), keepdims=False)])
    (want,) = interpret.run(g, [x])
    (got,) = run_graph(g, backend, x)
    assert got.dtype == want.dtype == g.outputs[0].type.np_dtype
    np.testing.assert_array_equal(got, want)
