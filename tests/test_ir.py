"""The IR core: types, printer/parser round trip, parse errors, verifier, graph exports."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
from graph_gen import graphs
from hypothesis import HealthCheck, given, settings

import bpir
from bpir.builder import Builder
from bpir.errors import ParseError, ShapeError, VerifyError
from bpir.ir import Node, Value
from bpir.types import TensorType
from bpir.verifier import verify


def mlp(W1, W2, x):
    return np.mean(np.tanh(x @ W1) @ W2)


def mlp_graph():
    return bpir.trace(mlp, bpir.Spec((3, 4)), bpir.Spec((4, 1)), bpir.Spec((5, 3)))


def test_printed_ir_is_typed_and_located():
    text = str(mlp_graph())
    assert text.startswith("func @mlp(%W1: f32[3,4], %W2: f32[4,1], %x: f32[5,3]) -> (f32[]) {")
    assert "%0: f32[5,4] = matmul %x, %W1" in text
    assert "loc(test_ir.py:" in text
    assert text.rstrip().endswith("}")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(graphs())
def test_round_trip_random_graphs(g):
    text = str(g)
    assert str(bpir.parse(text)) == text
    verify(bpir.parse(text))


def test_round_trip_special_values_and_regions():
    b = Builder("special")
    x = b.input(TensorType((2, 20), "f32"), "x")
    big = b.const(np.arange(40, dtype=np.float32).reshape(2, 20) / 7)
    tiny = b.const(np.array([np.inf, -np.inf, np.nan, -0.0, 1e-300]), "f64")
    s = b.add(x, big)
    ints = b.const(np.array([2**62, -3], dtype=np.int64))
    g = b.finish([s, tiny, ints])
    text = str(g)
    again = bpir.parse(text)
    assert str(again) == text
    np.testing.assert_array_equal(again.nodes[0].attrs["value"], big_value := g.nodes[0].attrs["value"])
    assert big_value.dtype == np.float32
    assert again.nodes[3].attrs["value"][0] == 2**62
    fused = bpir.optimize(bpir.trace(lambda a: np.exp(a * 2.0) + 1.0, np.ones((3, 3))))
    assert "region = func @region" in str(fused)
    assert str(bpir.parse(str(fused))) == str(fused)


@pytest.mark.parametrize(
    ("text", "line", "col", "words"),
    [
        ("func @f(%x: f32[2]) -> (f32[2]) {\n  return %y\n}", 2, 10, "undefined value %y"),
        (
            "func @f(%x: f32[2]) -> (f32[2]) {\n  %0: f32[2] = frobnicate %x\n  return %0\n}",
            2,
            16,
            "unknown op",
        ),
        ("func @f(%x: f33[2]) -> (f32[2]) {\n  return %x\n}", 1, 13, "unknown dtype"),
        ("func @f(%x: f32[2]) -> (f32[2]) {\n  %0: f32[3] = exp %x\n  return %0\n}", 2, 3, "declares f32[3]"),
        ("func @f(%x: f32[2]) -> (f32[2]) {\n  %0: f32[2] = exp %x $\n}", 2, 23, "unexpected character"),
    ],
)
def test_parse_errors_carry_line_and_column(text, line, col, words):
    with pytest.raises(ParseError) as e:
        bpir.parse(text)
    assert (e.value.line, e.value.column) == (line, col)
    assert words in str(e.value)


def test_verifier_catches_broken_graphs():
    g = mlp_graph()
    verify(g)
    g.nodes[0].outputs[0].type = TensorType((9, 9), "f32")
    with pytest.raises(VerifyError, match="declares"):
        verify(g)
    g = mlp_graph()
    g.nodes.reverse()
    with pytest.raises(VerifyError, match="not defined before"):
        verify(g)
    g = mlp_graph()
    g.outputs = [Value(TensorType((), "f32"))]
    with pytest.raises(VerifyError, match="never defined"):
        verify(g)
    g = mlp_graph()
    v = g.nodes[0].out
    g.nodes.append(Node("neg", [v], {}, [v]))
    with pytest.raises(VerifyError, match="not SSA"):
        verify(g)


def test_type_rules_raise_shape_errors_naming_op_and_shapes():
    b = Builder()
    x = b.input(TensorType((2, 3), "f32"))
    y = b.input(TensorType((3, 2), "f32"))
    with pytest.raises(ShapeError, match=r"add: operand shapes \(2, 3\), \(3, 2\) differ"):
        b.add(x, y)
    with pytest.raises(ShapeError, match=r"matmul: cannot multiply \(2, 3\) by \(2, 3\)"):
        b.matmul(x, x)
    with pytest.raises(ShapeError, match="add: operand dtypes f32, f64 differ at test_ir.py:"):
        b.add(x, b.input(TensorType((2, 3), "f64")))


def test_networkx_and_dot_exports():
    g = mlp_graph()
    nxg = g.to_networkx()
    assert nx.is_directed_acyclic_graph(nxg)
    ops = [d["op"] for _, d in nxg.nodes(data=True)]
    assert ops.count("matmul") == 2 and ops.count("input") == 3 and ops.count("output") == 1
    dot = g.to_dot()
    assert dot.startswith('digraph "mlp" {') and "matmul" in dot and "->" in dot


def test_op_identity_comes_from_declared_attributes():
    b = Builder()
    x = b.input(TensorType((2, 3), "f32"))
    s1 = b.reduce_sum(x, axes=[1])
    s2 = b.reduce_sum(x, axes=(1,), keepdims=False)
    assert b.nodes[0].attrs == b.nodes[1].attrs == {"axes": (1,), "keepdims": False}
    g = bpir.optimize(b.finish([s1, s2]), passes=["cse", "dce"])
    assert len(g.nodes) == 1
    with pytest.raises(TypeError, match="no attribute"):
        b.reduce_sum(x, axes=(1,), axis=1)
