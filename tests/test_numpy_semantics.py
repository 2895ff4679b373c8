"""NumPy's semantics under tracing: in-place updates through aliases and views, weakly typed
Python scalar arguments (NEP 50 / jax.jit), repeated-index assignment, and the errors that
say what to write instead."""

from __future__ import annotations

import os

import numpy as np
import pytest

import bpir


def _same_as_numpy(fn, *args, backend="numpy"):
    expected = fn(*(a.copy() if isinstance(a, np.ndarray) else a for a in args))
    got = bpir.compile(fn, backend=backend)(*args)
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    return got


X = np.arange(12.0).reshape(3, 4) - 5.0


# -- aliases and views ---------------------------------------------------------------------------


def test_in_place_update_is_seen_through_an_alias():
    def f(x):
        a = x
        a += 1
        return x.sum()

    assert float(_same_as_numpy(f, X)) == pytest.approx(X.sum() + X.size)


def test_writes_through_views_reach_the_base():
    def f(y):
        y = y.copy()
        row = y[0]
        row[:] = 0
        col = y[:, 1]
        col *= 2
        t = y.T
        t[0] = 7
        y[1][2] = 9.0
        y.reshape(-1)[5] = -3.0
        return y

    _same_as_numpy(f, X)


def test_a_view_rereads_its_base_after_the_base_changes():
    def f(y):
        y = y.copy()
        row = y[1]
        y[1, 2] = 100.0
        y *= 2
        return row.sum() + row[2]

    _same_as_numpy(f, X)


def test_reshape_of_a_transposed_array_is_a_copy_as_in_numpy():
    def f(y):
        y = y.copy()
        r = y.T.reshape(-1)  # NumPy has to copy here: writes to r do not reach y
        r[0] = 1000.0
        return y + r.reshape(4, 3).T

    _same_as_numpy(f, X)


def test_views_of_views_and_reversed_slices_write_back():
    def f(y):
        y = y.copy()
        v = y[::-1, 1:][0]
        v[::2] = -1.0
        np.transpose(y)[1:3, 0] += 5.0
        y.ravel()[::5] = 2.0
        return y

    _same_as_numpy(f, X)


def test_in_place_update_that_numpy_refuses_is_refused():
    def f(i):
        i += 1.5
        return i

    ints = np.arange(3)
    with pytest.raises(TypeError, match="same_kind"):  # NumPy refuses too (UFuncTypeError)
        f(ints.copy())
    with pytest.raises(bpir.TraceError, match="same_kind"):
        bpir.trace(f, ints)


def test_repeated_indices_accumulate_only_in_add_at():
    def f(x):
        a = x.copy()
        a[[0, 0, 2]] += 1.0  # one update per repeated index
        b = x.copy()
        np.add.at(b, [0, 0, 2], 1.0)  # every update
        c = x.copy()
        c[[1, 1]] = np.stack([x[0], x[2]])  # the last write stays
        return a, b, c

    got = bpir.compile(f, backend="numpy")(X)
    for g, e in zip(got, f(X.copy())):
        np.testing.assert_allclose(g, e)


def test_traced_repeated_indices_keep_the_last_write():
    def f(x, i, v):
        z = x.copy()
        z[i] = v
        return z

    i = np.array([2, 0, 2, 2])
    v = np.arange(16.0).reshape(4, 4)
    _same_as_numpy(f, X, i, v)


def test_scatter_gradients_match_a_hand_written_rule():
    def f(x, v, i):
        z = x.copy()
        z[i] = v
        return (z * z).sum()

    i = np.array([2, 0, 2])
    v = np.ones((3, 4))
    gx, gv = bpir.grad(f, argnums=(0, 1))(X, v, i)
    hit = np.zeros(3, bool)
    hit[i] = True
    np.testing.assert_allclose(gx, np.where(hit[:, None], 0.0, 2 * X))
    np.testing.assert_allclose(gv, [[0.0] * 4, 2 * v[1], 2 * v[2]])  # row 0 is overwritten by row 2


# -- weak Python scalars ---------------------------------------------------------------------------


def _step(w, x, lr):
    g = x.T @ (x @ w - 1.0)
    return w - lr * g


def test_python_float_argument_is_weakly_typed(backend):
    w = np.ones((3, 2), np.float32)
    x = np.full((4, 3), 0.5, np.float32)
    f = bpir.compile(_step, backend=backend)
    w1 = f(w, x, 0.1)
    w2 = f(w1, x, 0.1)  # a second step takes the first one's result
    assert w1.dtype == w2.dtype == np.float32
    np.testing.assert_allclose(w2, _step(_step(w, x, 0.1), x, 0.1), rtol=1e-5)
    assert f(w, x, np.float64(0.1)).dtype == np.float64  # a NumPy scalar is strong, as in NumPy


def test_weak_scalars_in_saved_artifacts(tmp_path):
    w = np.ones((3, 2), np.float32)
    x = np.full((4, 3), 0.5, np.float32)
    f = bpir.compile(_step, backend="numpy", example_args=(w, x, 0.1))
    f.save(os.fspath(tmp_path / "step"))
    g = bpir.load(os.fspath(tmp_path / "step"))
    out = g(w, x, 0.25)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, _step(w, x, 0.25), rtol=1e-6)


def test_python_int_argument_is_weak_and_scalar_only_arithmetic_stays_weak():
    def f(x, n, lr):
        return x * n + lr * 2 - (-lr)

    g = bpir.trace(f, np.ones(3, np.float32), 3, 0.5)
    assert str(g.outputs[0].type) == "f32[3]"


def test_weak_scalar_passes_through_grad_inside_a_compiled_step():
    def loss(w, x):
        return ((x @ w) ** 2).sum()

    def train(w, x, lr):
        return w - lr * bpir.grad(loss)(w, x)

    w = np.ones((3, 2), np.float32)
    x = np.full((4, 3), 0.5, np.float32)
    out = bpir.compile(train, backend="numpy")(w, x, 0.01)
    assert out.dtype == np.float32


# -- errors that say what to write -----------------------------------------------------------------


def test_a_numpy_array_filled_with_traced_values_becomes_traced():
    def fill(x):
        out = np.zeros((3, 3))
        out[0, 1] = x.sum()  # an element: NumPy asks float()
        out[1] = x  # a row: NumPy asks __array__()
        out[2, ::2] = x[1:] * 2
        for i in range(2):
            out[i + 1, -1 - i] -= 1.0
        out += 1.0
        return out

    _same_as_numpy(fill, np.arange(3.0))
    g = bpir.grad(lambda x: (fill(x) ** 2).sum())(np.arange(3.0))
    assert np.isfinite(g).all() and g.shape == (3,)


def test_filling_a_numpy_array_that_has_an_alias_or_view_says_what_to_write():
    def aliased(x):
        out = np.zeros(3)
        other = out
        out[0] = x.sum()
        return out, other

    def viewed(x):
        out = np.zeros((2, 3))
        row = out[1]
        out[1] = x
        return out, row

    def fill(out, x):
        out[0] = x.sum()  # the caller's array too: the caller would not see the write
        return out

    def argument(x):
        buf = np.zeros(3)
        return fill(buf, x), buf

    def attribute(x):
        holder = type("H", (), {})()
        holder.out = np.zeros(3)
        holder.out[0] = x.sum()
        return holder.out

    for fn in (aliased, viewed, argument, attribute):
        with pytest.raises(bpir.TraceError) as e:
            bpir.trace(fn, np.ones(3))
        msg = str(e.value)
        assert "into a NumPy array" in msg and "like=x" in msg and "control flow" not in msg
        assert "test_numpy_semantics.py:" in msg


def test_arrays_created_like_a_traced_value_can_be_filled():
    def conv_like(x):
        out = np.zeros((2, 3), like=x)
        out2 = np.zeros_like(x, shape=(3,))
        for i in range(2):
            out[i] = x * (i + 1)
        out2[1:] = x[:2]
        return out, out2

    got = bpir.compile(conv_like, backend="numpy")(np.arange(3.0))
    np.testing.assert_allclose(got[0], [[0, 1, 2], [0, 2, 4]])
    np.testing.assert_allclose(got[1], [0, 0, 1])


def test_mask_reads_with_data_dependent_shape_say_what_to_write():
    for fn in (lambda x: x[x > 0], lambda x: x[x > 0].sum(), lambda x: np.mean(x[x > 0])):
        with pytest.raises(bpir.TraceError, match=r"np\.where\(mask"):
            bpir.trace(fn, X)

    def two_masks(x):
        z = x.copy()
        z[x > 0] = np.exp(-x[x < 1])
        return z

    with pytest.raises(bpir.TraceError, match="different masks"):
        bpir.trace(two_masks, X)


def test_unsupported_forms_are_refused_by_name():
    cases = [
        (lambda x: np.pad(x, 1, mode="median"), "median"),
        (lambda x: np.pad(x, 1, mode="reflect", reflect_type="odd"), "odd"),
        (lambda x: np.pad(x, 1, mode="linear_ramp"), "linear_ramp"),
        (lambda x: np.multiply.at(x, [0], 2.0), "multiply.at"),
        (lambda x: x[x > 0, 1], "boolean mask combined"),
        (lambda x: x[None, [0, 1]], "None"),
    ]
    for fn, word in cases:
        with pytest.raises(bpir.TraceError, match=word):
            bpir.trace(fn, X)


def test_add_at_into_a_numpy_array_is_refused():
    def f(x):
        z = np.zeros(4)
        np.add.at(z, [0, 1], x)
        return z

    with pytest.raises(bpir.TraceError, match="like=x"):
        bpir.trace(f, np.ones(2))


def test_writing_into_an_enclosing_traces_array_is_refused():
    def outer(x):
        def inner(w):
            x[0] = w.sum()
            return (w * w).sum()

        return bpir.grad(inner)(x)

    with pytest.raises(bpir.TraceError, match="enclosing trace"):
        bpir.trace(outer, np.ones(3))


# -- transforms -----------------------------------------------------------------------------------


def test_grad_with_respect_to_an_integer_argument_raises():
    with pytest.raises(TypeError, match="floating-point"):
        bpir.grad(lambda x, i: (x * i).sum(), argnums=1)(np.ones(3), np.arange(3))
    # an integer leaf inside a pytree (a step count) gets None, as before
    assert bpir.grad(lambda p: (p["w"] * p["n"]).sum())({"w": np.ones(2), "n": 3})["n"] is None


def test_a_list_argument_is_a_pytree_as_in_jax():
    g = bpir.trace(lambda xs: xs[0] * xs[1], [np.ones(2), np.full(2, 3.0)])
    assert len(g.inputs) == 2
    with pytest.raises(bpir.TraceError, match="np.stack"):
        bpir.trace(lambda xs: np.sum(xs), [np.ones(2), np.ones(2)])


def test_custom_vjp_fwd_may_call_the_function_itself():
    @bpir.custom_vjp
    def f(x):
        return np.tanh(x)

    def fwd(x):
        return f(x), (x,)

    def bwd(res, g):
        (x,) = res
        return (g * 2.0,)  # deliberately not tanh's derivative: the rule is used

    f.defvjp(fwd, bwd)
    np.testing.assert_allclose(bpir.grad(lambda x: f(x).sum())(np.ones(3)), 2.0)
    np.testing.assert_allclose(bpir.compile(lambda x: f(x), backend="numpy")(np.zeros(2)), 0.0)
