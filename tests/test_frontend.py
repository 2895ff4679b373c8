"""The tracing frontend: plain NumPy code traces unchanged, NEP 50 promotion holds exactly,
in-place updates become functional ops, and bad input fails early with a useful message."""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import bpir
import bpir.numpy as bnp
from bpir.types import to_numpy_dtype

THIS_FILE = os.path.basename(__file__)
DTYPES = [np.float16, np.float32, np.float64, np.int32, np.int64, np.bool_]


def run_numpy(fn, *args):
    return bpir.compile(fn, backend="numpy")(*args)


def ops_of(graph) -> list[str]:
    return [n.op for n in graph.nodes]


# --- plain NumPy code ---------------------------------------------------------------------------


def numpy_layer_code(W, b, x):
    z = np.dot(x, W) + b
    h = np.maximum(z, 0)
    s = np.sum(h, axis=1, keepdims=True)
    e = np.exp(np.tanh(h) - np.max(h, axis=1, keepdims=True))
    m = np.mean(np.log(e + 1.0) * np.sqrt(np.abs(z)), axis=0)
    t = np.transpose(np.swapaxes(np.reshape(h, (2, -1, h.shape[1])), 0, 1), (1, 0, 2))
    c = np.concatenate([np.clip(z, -1, 1), np.where(z > 0, np.sin(z), np.cos(z))], axis=1)
    k = np.einsum("ij,jk->ik", x, W) - x @ W
    return s / h.shape[1], m, t.astype(np.float32), c.T, k.sum(), h.max(), z.reshape(-1)[::3]


def test_plain_numpy_code_traces_and_matches():
    rng = np.random.default_rng(1)
    W, b, x = rng.standard_normal((5, 6)), rng.standard_normal(6), rng.standard_normal((4, 5))
    got = run_numpy(numpy_layer_code, W, b, x)
    want = numpy_layer_code(W, b, x)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert np.asarray(g).dtype == np.asarray(w).dtype
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-12)


def test_tracer_attributes_and_methods():
    def fn(x):
        assert x.shape == (3, 4) and x.ndim == 2 and x.dtype == np.float32
        return x.T.reshape(2, 6).sum(axis=0), x.mean(), x.max(axis=1), x[None, ..., 1:3, None]

    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    for g, w in zip(run_numpy(fn, x), fn(x)):
        np.testing.assert_array_equal(g, w)


def test_bnp_functions_match_their_definitions():
    rng = np.random.default_rng(2)
    z = rng.standard_normal((4, 5))
    labels = np.array([0, 4, 2, 1])

    def fn(z, labels):
        soft = (bnp.softmax(z), bnp.log_softmax(z, axis=0), bnp.logsumexp(z, axis=1))
        return (*soft, bnp.sigmoid(z), bnp.relu(z), bnp.one_hot(labels, 5), bnp.cross_entropy(z, labels))

    sm, lsm0, lse, sig, relu, oh, ce = run_numpy(fn, z, labels)
    ez = np.exp(z - z.max(axis=1, keepdims=True))
    np.testing.assert_allclose(sm, ez / ez.sum(axis=1, keepdims=True), rtol=1e-12)
    np.testing.assert_allclose(lsm0, z - np.log(np.exp(z).sum(axis=0)), rtol=1e-12)
    np.testing.assert_allclose(lse, np.log(np.exp(z).sum(axis=1)), rtol=1e-12)
    np.testing.assert_allclose(sig, 1 / (1 + np.exp(-z)), rtol=1e-12)
    np.testing.assert_array_equal(relu, np.maximum(z, 0))
    assert oh.dtype == np.float32
    np.testing.assert_array_equal(oh, np.eye(5, dtype=np.float32)[labels])
    log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    np.testing.assert_allclose(ce, -log_p[np.arange(4), labels].mean(), rtol=1e-12)


def test_bnp_functions_run_eagerly_on_arrays():
    z = np.array([[1.0, 2.0, 3.0]])
    np.testing.assert_allclose(bnp.softmax(z).sum(), 1.0)
    assert isinstance(bnp.relu(z), np.ndarray)


def test_loops_unroll_at_trace_time():
    def rnn(h, W):
        for _ in range(4):
            h = np.tanh(h @ W)
        return h

    g = bpir.trace(rnn, np.ones((2, 3)), np.ones((3, 3)))
    assert ops_of(g).count("matmul") == 4 and ops_of(g).count("tanh") == 4


# --- pytrees and integer inputs -----------------------------------------------------------------


def test_pytree_arguments_and_results_keep_their_structure():
    params = {"layers": [{"W": np.ones((2, 2)), "b": np.zeros(2)}, {"W": 2 * np.ones((2, 1))}], "scale": 3.0}

    def fn(p, xs):
        x, labels = xs
        h = x @ p["layers"][0]["W"] + p["layers"][0]["b"]
        return {"out": (h @ p["layers"][1]["W"]) * p["scale"], "n": labels.sum()}

    x, labels = np.ones((4, 2)), np.arange(4)
    got = run_numpy(fn, params, (x, labels))
    assert set(got) == {"out", "n"}
    np.testing.assert_array_equal(got["out"], fn(params, (x, labels))["out"])
    assert got["n"] == 6 and got["n"].dtype == np.int64


def test_the_per_signature_argument_collector_agrees_with_flatten_like():
    """``collector`` (built once per compiled signature) takes exactly the trees ``flatten_like``
    takes, in the same leaf order, and refuses the same mismatches."""
    from collections import namedtuple

    from bpir.pytree import collector, flatten, flatten_like

    a, b = np.ones(2), np.zeros(3)
    tree = ({"W": a, "b": b, "n": {"m": [a, b], "t": 1.0}}, [a, None], a)
    _, treedef = flatten(tree)
    pair = namedtuple("pair", "x y")
    variants = [tree, ({"b": b, "W": a, "n": {"t": 2.0, "m": [b, a]}}, [b, None], a),  # keys in any order
                ({"W": a, "b": b}, [a, None], a), ({"W": a, "b": b, "n": {"m": (a, b), "t": 1.0}}, [a, None], a),
                ({"W": [a], "b": b, "n": {"m": [a, b], "t": 1.0}}, [a, None], a),
                ({"W": a, "b": b, "n": {"m": [a, b], "t": None}}, [a, None], a),
                ({"W": a, "b": b, "n": {"m": [a, b], "t": 1.0}}, [a, a], a), ({"W": a, "b": b, "n": {"m": [a, b]}}, [a], a),
                ({"W": a, "b": b, "n": {"m": pair(a, b), "t": 1.0}}, [a, None], a), [tree[0], tree[1], a], a]  # fmt: skip
    collect = collector(treedef)
    for v in variants:
        want, got = flatten_like(v, treedef), collect(v)
        assert (want is None) == (got is None) and (want is None or all(x is y for x, y in zip(want, got)))
    assert collect(variants[1]) is not None and collect(variants[2]) is None


def test_integer_labels_are_valid_inputs_and_gather():
    def pick(z, labels):
        return z[np.arange(z.shape[0]), labels], np.take_along_axis(z, labels[:, None], axis=1)

    z, labels = np.arange(12.0).reshape(4, 3), np.array([2, 0, 1, 2])
    a, b = run_numpy(pick, z, labels)
    np.testing.assert_array_equal(a, z[np.arange(4), labels])
    np.testing.assert_array_equal(b[:, 0], a)


# --- in-place updates become functional ---------------------------------------------------------


def test_textbook_relu_layer_masking_a_copy():
    def relu_forward(x):
        out = x.copy()
        out[x < 0] = 0
        return out

    x = np.array([[-1.0, 2.0], [3.0, -4.0]])
    np.testing.assert_array_equal(run_numpy(relu_forward, x), relu_forward(x))
    assert "where" in ops_of(bpir.trace(relu_forward, x))


def test_augmented_and_slice_assignment_do_not_touch_the_input():
    def fn(a, b):
        a = a.copy()
        a[:, 0] = 1
        a[1:, 1:] += b
        a *= 2
        return a

    a, b = np.zeros((3, 3)), np.ones((2, 2))
    got = run_numpy(fn, a, b)
    np.testing.assert_array_equal(got, fn(a, b))
    np.testing.assert_array_equal(a, np.zeros((3, 3)))


def test_inplace_add_on_an_argument_rebinds_functionally():
    def fn(h, b):
        h += b
        return h

    h, b = np.ones((2, 3)), np.arange(3.0)
    np.testing.assert_array_equal(run_numpy(fn, h, b), np.ones((2, 3)) + np.arange(3.0))
    np.testing.assert_array_equal(h, np.ones((2, 3)))


# --- NEP 50 promotion ---------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(DTYPES),
    st.sampled_from(DTYPES),
    st.sampled_from(["add", "mul", "sub", "truediv", "maximum", "greater"]),
)
def test_array_array_promotion_is_numpys(da, db, op):
    fn = {"add": np.add, "mul": np.multiply, "sub": np.subtract, "truediv": np.true_divide,
          "maximum": np.maximum, "greater": np.greater}[op]  # fmt: skip
    a, b = np.ones(3, da), np.ones(3, db)
    try:
        want = fn(a, b).dtype
    except TypeError:  # e.g. bool - bool: NumPy refuses, so must we
        with pytest.raises((TypeError, bpir.ShapeError)):
            bpir.trace(fn, a, b)
        return
    assert to_numpy_dtype(bpir.trace(fn, a, b).outputs[0].dtype) == want


@pytest.mark.parametrize("dtype", DTYPES[:5])
@pytest.mark.parametrize("scalar", [2, 2.5, True, np.float64(2.0), np.int32(3), np.float32(0.5)])
def test_python_and_numpy_scalars_follow_nep50(dtype, scalar):
    x = np.ones(3, dtype)
    want = (x * scalar).dtype
    got = bpir.trace(lambda x: x * scalar, x).outputs[0].type
    assert to_numpy_dtype(got.dtype) == want, (dtype, type(scalar), got)


# --- errors ------------------------------------------------------------------------------------


def test_bool_of_a_tracer_raises_trace_error_at_the_users_line():
    def branchy(x):
        if x.sum() > 0:
            return x
        return -x

    with pytest.raises(bpir.TraceError) as e:
        bpir.trace(branchy, np.ones(3))
    assert f"{THIS_FILE}:" in str(e.value) and "np.where" in str(e.value)


@pytest.mark.parametrize(
    ("fn", "shapes", "words"),
    [
        (lambda a, b: a + b, [(3, 4), (5,)], ["add", "(3, 4)", "(5,)"]),
        (lambda a, b: a @ b, [(3, 4), (5, 2)], ["matmul", "(3, 4)", "(5, 2)"]),
        (lambda a, b: np.concatenate([a, b], axis=0), [(2, 3), (2, 4)], ["concatenate", "[2,3]", "[2,4]"]),
        (lambda a, b: a.reshape(7), [(2, 3), (1,)], ["reshape", "(2, 3)"]),
    ],
)
def test_shape_errors_name_op_shapes_and_line(fn, shapes, words):
    args = [np.ones(s) for s in shapes]
    with pytest.raises(bpir.ShapeError) as e:
        bpir.trace(fn, *args)
    assert isinstance(e.value, ValueError)
    for w in [*words, f"{THIS_FILE}:"]:
        assert w in str(e.value), (w, str(e.value))


def test_compiled_function_names_the_argument_path_on_bad_input():
    f = bpir.compile(lambda p, x: p["W"] @ x, example_args=({"W": np.ones((2, 3))}, np.ones(3)))
    with pytest.raises(ValueError, match=r"p\['W'\].*\(2, 3\).*\(2, 4\)"):
        f({"W": np.ones((2, 4))}, np.ones(3))
    with pytest.raises(TypeError, match=r"p\['W'\].*f64.*f32"):
        f({"W": np.ones((2, 3), np.float32)}, np.ones(3))
    with pytest.raises(TypeError, match="structured as"):
        f({"V": np.ones((2, 3))}, np.ones(3))
    with pytest.raises(TypeError, match="structured as"):
        f({"W": np.ones((2, 3))})


def test_unsupported_argument_type_names_the_path():
    with pytest.raises(TypeError, match=r"x\['a'\]"):
        bpir.trace(lambda x: x["a"], {"a": "not an array"})
