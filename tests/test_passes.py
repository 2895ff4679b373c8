"""Optimization passes: each on hand-written graphs, the pipeline on traced models, and a
property test that random graphs compute the same values before and after optimization."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
from graph_gen import graphs
from hypothesis import HealthCheck, given, settings

import bpir
from bpir.builder import Builder
from bpir.demo.models import init_mlp, mlp_batch, sgd_step
from bpir.passes import manager, memory
from bpir.passes.cse import cse
from bpir.passes.dce import dce
from bpir.passes.fold import fold
from bpir.passes.fusion import MAX_GROUP_INPUTS, fusion
from bpir.passes.simplify import simplify
from bpir.types import TensorType, to_numpy_dtype
from bpir.verifier import verify


def f64(*shape):
    return TensorType(shape, "f64")


def ops(graph) -> list[str]:
    return [n.op for n in graph.nodes]


def run(graph, *args):
    from bpir.backends.numpy.backend import compile_graph

    fn, _ = compile_graph(graph)
    return fn(*args)


def random_args(graph, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(v.shape).astype(to_numpy_dtype(v.dtype)) for v in graph.inputs]


def same_values(before, after, seed=0):
    args = random_args(before, seed)
    for x, y in zip(run(before, *args), run(after, *args)):
        np.testing.assert_allclose(y, x, rtol=1e-12, atol=1e-12, equal_nan=True)


# --- dce, cse, fold ----------------------------------------------------------------------------


def test_dce_removes_what_no_output_reads():
    b = Builder("g")
    x = b.input(f64(3))
    b.exp(x)
    y = b.tanh(x)
    b.sin(b.cos(x))
    g = dce(b.finish([y]))
    assert ops(g) == ["tanh"]


def test_cse_merges_equal_nodes_by_their_attributes_only():
    b = Builder("g")
    x = b.input(f64(3, 4))
    s1 = b.reduce_sum(x, axes=(0,), keepdims=False)
    s2 = b.reduce_sum(x, axes=(0,), keepdims=False)
    s3 = b.reduce_sum(x, axes=(1,), keepdims=False)
    e1, e2 = b.exp(x), b.exp(x)
    g = cse(b.finish([b.add(s1, s2), s3, b.mul(e1, e2)]))
    assert ops(g).count("reduce_sum") == 2 and ops(g).count("exp") == 1
    verify(g)


def test_fold_evaluates_constant_subgraphs_only():
    b = Builder("g")
    x = b.input(f64(3))
    c = b.exp(b.add(b.const(np.array([1.0, 2.0, 3.0])), b.scalar(1.0, "f64")))
    g = dce(fold(b.finish([b.mul(x, c)])))
    assert ops(g) == ["constant", "mul"]
    np.testing.assert_allclose(g.nodes[0].attrs["value"], np.exp([2.0, 3.0, 4.0]))


# --- algebraic simplification ------------------------------------------------------------------


@pytest.mark.parametrize(
    "build",
    [
        lambda b, x: b.mul(x, b.scalar(1.0, "f64")),
        lambda b, x: b.add(b.scalar(0.0, "f64"), x),
        lambda b, x: b.sub(x, b.scalar(0.0, "f64")),
        lambda b, x: b.div(x, b.scalar(1.0, "f64")),
        lambda b, x: b.neg(b.neg(x)),
        lambda b, x: b.transpose(b.transpose(x, (1, 0)), (1, 0)),
        lambda b, x: b.reshape(b.reshape(x, (12,)), (3, 4)),
        lambda b, x: b.cast(x, "f64"),
        lambda b, x: b.broadcast_to(x, (3, 4)),
    ],
)
def test_identities_disappear(build):
    b = Builder("g")
    x = b.input(f64(3, 4))
    g = dce(simplify(b.finish([build(b, x)])))
    assert g.outputs[0] is g.inputs[0], str(g)


def test_chains_compose_instead_of_vanishing():
    b = Builder("g")
    x = b.input(f64(2, 3, 4))
    t = b.transpose(b.transpose(x, (1, 0, 2)), (0, 2, 1))
    r = b.reshape(b.reshape(x, (6, 4)), (4, 6))
    g = dce(simplify(b.finish([t, r])))
    assert ops(g) == ["transpose", "reshape"]
    assert g.nodes[0].attrs["perm"] == (1, 2, 0)
    same_values(b.finish([t, r]), g)


def test_float_x_minus_x_is_kept_because_of_nan_and_inf():
    b = Builder("g")
    x = b.input(f64(3))
    g = simplify(b.finish([b.sub(x, x)]))
    assert ops(g) == ["sub"]
    out = run(g, np.array([np.inf, np.nan, 1.0]))[0]
    assert np.isnan(out[0]) and np.isnan(out[1]) and out[2] == 0


def test_integer_x_minus_x_is_zero():
    b = Builder("g")
    x = b.input(TensorType((3,), "i64"))
    g = dce(simplify(b.finish([b.sub(x, x)])))
    assert ops(g) == ["constant"] or ops(g) == ["constant", "broadcast_to"]


def test_broadcasts_sink_below_elementwise_ops():
    b = Builder("g")
    v = b.input(f64(4))
    big = b.exp(b.broadcast_to(v, (1000, 4)))
    g = dce(simplify(b.finish([big])))
    assert ops(g) == ["exp", "broadcast_to"]
    assert g.nodes[0].out.shape == (4,)


# --- fusion -------------------------------------------------------------------------------------


def fused_nodes(graph):
    return [n for n in graph.nodes if n.op == "fused"]


def test_an_elementwise_chain_becomes_one_fused_node():
    g = bpir.trace(lambda x: np.tanh(x * 0.5 + 1) * bnp_sigmoid(x) - np.exp(-x * x), np.ones((8, 8)))
    opt = bpir.optimize(g)
    assert ops(opt) == ["fused"]
    region = opt.nodes[0].attrs["region"]
    assert {"tanh", "exp", "sigmoid"} <= set(ops(region))
    text = str(opt)
    assert "region = func @region" in text and text.count("{") >= 2
    same_values(g, opt)


def bnp_sigmoid(x):
    import bpir.numpy as bnp

    return bnp.sigmoid(x)


def test_reduction_prologue_is_fused_into_the_reduction():
    g = bpir.trace(lambda x, y: np.sum((x - y) ** 2, axis=1), np.ones((4, 5)), np.ones((4, 5)))
    opt = bpir.optimize(g)
    assert ops(opt) == ["fused"]
    assert opt.nodes[0].attrs["reduce"] == "sum" and opt.nodes[0].attrs["axes"] == (1,)
    same_values(g, opt)


def test_fusion_never_creates_a_cycle():
    # a -> matmul -> c, and c also reads a: fusing a with c would need the matmul inside the group
    b = Builder("g")
    x, w = b.input(f64(4, 4)), b.input(f64(4, 4))
    a = b.exp(x)
    m = b.matmul(a, w)
    c = b.add(b.tanh(a), m)
    g = b.finish([c])
    opt = fusion(g)
    verify(opt)
    assert nx.is_directed_acyclic_graph(opt.to_networkx())
    assert ops(opt).count("matmul") == 1
    same_values(g, opt)


def test_expensive_producers_are_not_duplicated_and_groups_are_bounded():
    b = Builder("g")
    xs = [b.input(f64(3, 3), f"x{i}") for i in range(MAX_GROUP_INPUTS + 6)]
    acc = xs[0]
    for v in xs[1:]:
        acc = b.add(acc, v)
    shared = b.matmul(acc, xs[0])
    g = b.finish([b.exp(shared), b.tanh(shared)])
    opt = fusion(g)
    verify(opt)
    for n in fused_nodes(opt):
        assert len(n.inputs) <= MAX_GROUP_INPUTS
    assert ops(opt).count("matmul") == 1
    same_values(g, opt)


def test_training_step_backward_fuses_its_elementwise_chains_and_moves_fewer_bytes():
    sizes = [8, 16, 4]
    params = init_mlp(sizes, dtype="float64")
    x, labels = mlp_batch(sizes, 32, dtype="float64")
    g = bpir.trace(sgd_step, params, x, labels)
    opt = bpir.optimize(g)
    same_values(g, opt)
    fused = fused_nodes(opt)
    # relu forward+mask is one group; every SGD update p - lr * g is one group; softmax's
    # exp(z - max) is one group
    assert any({"maximum", "gt"} <= set(ops(n.attrs["region"])) for n in fused)
    assert sum(set(ops(n.attrs["region"])) == {"constant", "mul", "sub"} for n in fused) == 4
    assert not [n for n in opt.nodes if n.op in ("exp", "log", "maximum", "gt", "reduce_max")]
    # relu-backward (g * mask) and the bias gradient (its column sums) in one pass that writes
    # the product for the weight-gradient matmul and the sums for b1
    relu_bwd = [n for n in fused if n.attrs["reduce"] == "sum" and n.attrs["unreduced"] == 1
                and [v.shape for v in n.outputs] == [(32, 16), (16,)]]  # fmt: skip
    assert len(relu_bwd) == 1 and "mul" in ops(relu_bwd[0].attrs["region"])
    assert any(u.op == "matmul" for u in opt.users()[relu_bwd[0].outputs[0]])
    before, after = memory.report(g), memory.report(opt)
    assert after["bytes_moved"] < before["bytes_moved"]


# --- memory planning ---------------------------------------------------------------------------


def test_inplace_reuse_only_when_the_input_dies():
    b = Builder("g")
    x = b.input(f64(100))
    a = b.exp(x)  # x is a graph input: never overwritten
    c = b.tanh(a)  # a dies here: c may live in a's buffer
    d = b.sin(c)
    e = b.add(d, c)  # c is still live at d; e may reuse d or c
    g = b.finish([e])
    p = memory.plan(g)
    assert 0 not in p.inplace
    assert p.inplace[1] is a
    assert 2 not in p.inplace  # c is read again by node 3
    assert 3 in p.inplace
    got = run(g, np.linspace(0, 1, 100))[0]
    want = np.sin(np.tanh(np.exp(np.linspace(0, 1, 100)))) + np.tanh(np.exp(np.linspace(0, 1, 100)))
    np.testing.assert_allclose(got, want, rtol=1e-14)


def test_memory_report_counts_peak_and_bytes():
    b = Builder("g")
    x = b.input(f64(1000))
    g = b.finish([b.exp(b.exp(x))])
    r = memory.report(g)
    # exp reads 8000 B and writes 8000 B, twice
    assert r["bytes_moved"] == 4 * 8000
    assert r["peak_bytes"] >= 8000


# --- the manager -------------------------------------------------------------------------------


def test_manager_records_each_pass_and_prints_after_a_named_pass(capsys):
    g = bpir.trace(lambda x: np.exp(x * 1.0) + 0.0, np.ones(4))
    report = manager.PassReport()
    manager.optimize(g, print_after={"simplify"}, report=report)
    names = [r.name for r in report.records]
    assert names == [name for name, _ in manager.default_pipeline()]
    assert all(r.seconds >= 0 for r in report.records)
    err = capsys.readouterr().err
    assert "IR after simplify" in err and "IR after fold" not in err


def test_bpir_dump_after_all(monkeypatch, capsys):
    monkeypatch.setenv("BPIR_DUMP", "after-all")
    manager.optimize(bpir.trace(lambda x: np.negative(np.negative(x)), np.ones(4)))
    err = capsys.readouterr().err
    assert all(f"IR after {name}" in err for name, _ in manager.default_pipeline())


def test_the_verifier_catches_a_broken_pass():
    def broken(graph):
        return type(graph)(graph.name, graph.inputs, graph.nodes[1:], graph.outputs, graph.input_info)

    g = bpir.trace(lambda x: np.exp(np.tanh(x)), np.ones(4))
    with pytest.raises(Exception, match="not defined|dangling|undefined"):
        manager.optimize(g, passes=[("broken", broken)], verify_each=True)


def test_unknown_pass_name():
    with pytest.raises(ValueError, match="unknown pass 'fusoin'"):
        manager.optimize(bpir.trace(lambda x: x, np.ones(1)), passes=["fusoin"])


# --- decomposition for backends that lack an op --------------------------------------------------


WINDOW_CASES = [
    ("conv", dict(stride=1, padding=0, dilation=1, groups=1), (2, 4, 6, 6), (6, 4, 3, 3)),
    ("conv", dict(stride=2, padding=1, dilation=1, groups=2), (2, 4, 7, 7), (6, 2, 3, 3)),
    ("conv", dict(stride=(1, 2), padding=(2, 1), dilation=2, groups=1), (1, 3, 8, 9), (2, 3, 2, 3)),
    ("max", dict(kernel_size=2), (2, 3, 6, 6), None),
    ("max", dict(kernel_size=3, stride=2, padding=1), (1, 2, 7, 7), None),
    ("avg", dict(kernel_size=(2, 3), stride=(2, 1), padding=(1, 1)), (2, 2, 5, 6), None),
]


@pytest.mark.parametrize(("kind", "kw", "xshape", "wshape"), WINDOW_CASES)
def test_windowed_ops_and_their_gradients_decompose_exactly(kind, kw, xshape, wshape):
    """conv2d/pooling and their gradient ops lowered to slices, pads and matmuls compute what
    the native kernels compute, forward and backward (max ties included: integers tie often)."""
    from bpir.backends.codegen import decompose_missing
    from bpir.backends.numpy.backend import SUPPORTED

    import bpir.numpy as bnp

    rng = np.random.default_rng(4)
    x = rng.integers(-3, 4, xshape).astype(np.float64)  # many ties in max windows
    args = [x] if wshape is None else [x, rng.standard_normal(wshape)]
    fn = {"conv": lambda x, w: bnp.conv2d(x, w, **kw), "max": lambda x: bnp.max_pool2d(x, **kw),
          "avg": lambda x: bnp.avg_pool2d(x, **kw)}[kind]  # fmt: skip

    def loss(*a):
        y = fn(*a)
        return np.sum(y * np.cos(np.arange(y.size).reshape(y.shape)))

    step = bpir.trace(lambda *a: (fn(*a), bpir.grad(loss, argnums=tuple(range(len(a))))(*a)), *args)
    windowed = {"conv2d", "conv2d_input_grad", "conv2d_weight_grad", "max_pool2d", "max_pool2d_grad",
                "avg_pool2d", "avg_pool2d_grad"}  # fmt: skip
    assert windowed & set(ops(step))
    lowered = decompose_missing(step, SUPPORTED - windowed, "test")
    assert not windowed & set(ops(lowered))
    for got, want in zip(run(lowered, *args), run(step, *args)):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_missing_ops_lower_through_their_decomposition():
    from bpir.backends.codegen import decompose_missing
    from bpir.backends.numpy.backend import SUPPORTED

    import bpir.numpy as bnp

    rng = np.random.default_rng(3)
    x, w = rng.standard_normal((2, 3, 7, 7)), rng.standard_normal((4, 3, 3, 3))
    g = bpir.trace(lambda x, w: bnp.conv2d(x, w, stride=2, padding=1), x, w)
    lowered = decompose_missing(g, SUPPORTED - {"conv2d"}, "test")
    assert "conv2d" not in ops(lowered) and "matmul" in ops(lowered)
    same_values(g, lowered)
    with pytest.raises(NotImplementedError, match="'matmul' is not supported by the test backend"):
        decompose_missing(g, SUPPORTED - {"conv2d", "matmul"}, "test")


# --- property: the default pipeline preserves values -----------------------------------------


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(graphs(max_nodes=16))
def test_default_pipeline_preserves_values_on_random_graphs(g):
    opt = manager.optimize(g, verify_each=True)
    args = random_args(g, seed=1)
    for x, y in zip(run(g, *args), run(opt, *args)):
        np.testing.assert_allclose(y, x, rtol=1e-12, atol=1e-12, equal_nan=True)


def test_fold_evaluates_a_node_reading_one_constant_twice():
    """x @ x.T of a constant is matmul(c, c, transpose_b): the graph fold evaluates has c once."""
    from bpir.builder import Builder
    from bpir.passes.fold import fold

    c = np.arange(6.0).reshape(2, 3)
    b = Builder("f")
    k = b.const(c)
    g = b.finish([b.matmul(k, k, transpose_b=True)])
    folded = fold(g)
    (out,) = [n for n in folded.nodes if n.outputs[0] is folded.outputs[0]]
    assert out.op == "constant"  # the matmul was evaluated (dce drops the unused input constant)
    np.testing.assert_array_equal(out.attrs["value"], c @ c.T)
