"""The JAX backend's call path and lowering: arguments go to ``jax.jit`` as a pytree (jax's C++
dispatch checks the signature), yet every argument bpir's check refuses is still refused with
the same error naming the argument's path, after successful calls too; transposed matmuls lower
to ``dot_general`` dimension numbers, never a transpose op."""

from __future__ import annotations

import numpy as np
import pytest

import bpir
import bpir.compiled
from bpir.demo.models import init_mlp, mlp_batch, sgd_step

jax = pytest.importorskip("jax")
from bpir.backends.jax import kernels as jax_kernels  # noqa: E402
from bpir.backends.jax.backend import stablehlo  # noqa: E402
from bpir.backends.numpy import kernels as numpy_kernels  # noqa: E402


def problem():
    params = init_mlp([4, 8, 3])
    x, labels = mlp_batch([4, 8, 3], 6)
    return params, x, labels


@pytest.fixture(params=["example_args", "first call", "loaded"])
def step(request, tmp_path):
    """sgd_step compiled ahead of time, compiled on its first call, and saved then loaded."""
    args = problem()
    if request.param == "first call":
        f = bpir.compile(sgd_step, backend="jax")
        f(*args)
        return f
    f = bpir.compile(sgd_step, backend="jax", example_args=args)
    if request.param == "loaded":
        f.save(str(tmp_path / "step"))
        f = bpir.load(str(tmp_path / "step"))
    return f


def test_wrong_arguments_after_successful_calls_raise_the_path_error(step):
    params, x, labels = problem()
    want = bpir.compile(sgd_step, backend="numpy", example_args=(params, x, labels))(params, x, labels)
    for _ in range(3):  # the signature is in jax's dispatch cache from here on
        loss, new = step(params, x, labels)
    np.testing.assert_allclose(float(loss), float(want[0]), rtol=1e-5)
    if step.aot:  # a new signature is an error (on first-call compiles it specialises again)
        with pytest.raises(ValueError, match=r"^x: expected shape \(6, 4\) \(f32\[6,4\]\), got \(3, 4\)$"):
            step(params, x[:3], labels)
        with pytest.raises(TypeError, match=r"params\['W2'\]: expected dtype f32"):
            step({**params, "W2": params["W2"].astype(np.float64)}, x, labels)
        with pytest.raises(TypeError, match=r"labels: expected dtype i64"):
            step(params, x, labels.astype(np.int32))
        with jax.enable_x64(True):  # device arrays take the same check
            with pytest.raises(ValueError, match=r"^x: expected shape \(6, 4\)"):
                step(params, jax.device_put(x[:3]), jax.device_put(labels))
        without_b2 = {k: v for k, v in params.items() if k != "b2"}
        with pytest.raises(TypeError, match=r"sgd_step expects arguments structured as \(\{'W1'"):
            step(without_b2, x, labels)
    with pytest.raises(TypeError, match="expects arguments structured as|cannot trace a str"):
        step(params, x, "labels")
    loss, _ = step(params, x, labels)  # and the signature still works after the errors
    np.testing.assert_allclose(float(loss), float(want[0]), rtol=1e-5)


def test_dict_key_order_is_free_and_results_keep_the_functions_order(step):
    params, x, labels = problem()
    reordered = dict(reversed(list(params.items())))
    loss, new = step(reordered, x, labels)
    loss2, _ = step(params, x, labels)
    assert float(loss) == float(loss2)
    assert list(new) == list(params)  # the order sgd_step builds its dict in


def test_calls_with_the_compiled_signature_skip_the_python_check(monkeypatch):
    args = problem()
    f = bpir.compile(sgd_step, backend="jax", example_args=args)
    f(*args)

    def refuse(*_):
        raise AssertionError("the Python argument check ran on the fast path")

    monkeypatch.setattr(bpir.compiled, "check_args", refuse)
    f(*args)
    with pytest.raises(AssertionError, match="Python argument check ran"):
        f(args[0], args[1][:3], args[2])  # a wrong shape goes to the check, which explains it


def test_python_scalars_keep_their_weak_typing_per_signature():
    x = np.ones(3, np.float32)
    f = bpir.compile(lambda x, s: x * s, backend="jax")
    assert f(x, 0.5).dtype == np.float32  # a Python float is weak (NEP 50)
    assert f(x, np.float64(0.5)).dtype == np.float64  # a NumPy float64 is not
    assert f(x, 0.5).dtype == np.float32  # the fast path does not reuse the other signature
    assert f(x, np.float64(2.0)).dtype == np.float64
    aot = bpir.compile(lambda x, s: x * s, backend="jax", example_args=(x, np.float32(0.5)))
    for s in (0.25, 0.25, np.float32(0.25)):  # a Python float converts to the declared f32
        out = aot(x, s)
        assert out.dtype == np.float32 and np.all(np.asarray(out) == 0.25)
    g = bpir.compile(lambda x, b: np.where(b, x, -x), backend="jax")  # jax types True like np.True_
    for b in (True, np.False_, False, np.True_, True):
        np.testing.assert_array_equal(np.asarray(g(x, b)), x if b else -x)
    with pytest.raises(TypeError, match=r"s: expected dtype f32"):
        aot(x, 1)  # a Python int is not a float


@pytest.mark.parametrize("expr", ["a.T @ b", "a @ b.T", "a.T @ b.T", "grad"])
def test_transposed_matmul_lowers_without_a_transpose(expr):
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((5, 5)).astype(np.float32), rng.standard_normal((5, 5)).astype(np.float32)
    fns = {"a.T @ b": lambda a, b: a.T @ b, "a @ b.T": lambda a, b: a @ b.T, "a.T @ b.T": lambda a, b: a.T @ b.T,
           "grad": bpir.grad(lambda a, b: np.sum(np.tanh(a @ b)), argnums=(0, 1))}  # fmt: skip
    f = bpir.compile(fns[expr], backend="jax", example_args=(a, b))
    text = stablehlo(f.executable)
    assert "stablehlo.dot_general" in text and "transpose" not in text
    want = bpir.compile(fns[expr], backend="numpy", example_args=(a, b))(a, b)
    for got, ref in zip(jax.tree_util.tree_leaves(f(a, b)), jax.tree_util.tree_leaves(want)):
        np.testing.assert_allclose(np.asarray(got), ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "shape, axis, dim", [((5, 1), 1, 4), ((5, 3), 1, 4), ((3, 5), 0, 6), ((2, 3, 4), 1, 5)]
)
def test_scatter_add_along_axis_matches_numpy_with_repeats_and_negative_indices(shape, axis, dim):
    rng = np.random.default_rng(1)
    idx, upd = rng.integers(-dim, dim, shape), rng.standard_normal(shape)
    with jax.enable_x64(True):
        got = np.asarray(
            jax.jit(jax_kernels.scatter_add_along_axis, static_argnums=(2, 3))(idx, upd, axis, dim)
        )
    np.testing.assert_allclose(got, numpy_kernels.scatter_add_along_axis(idx, upd, axis, dim), rtol=1e-12)
