"""The simplify pass's named rewrite rules: for each rule a tiny graph where it fires once (and
the result equals NumPy's), the same graph with that rule switched off (it does not fire; the
result still equals NumPy's); the per-rule counts in the pass report; and the string flags
(input roles, a fused node's reduction) as enums whose text form is what it was."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest

import bpir
from bpir.builder import Builder
from bpir.ir import InputInfo, Role
from bpir.ops.fused import Reduce
from bpir.passes import manager
from bpir.passes.simplify import RULES
from bpir.types import TensorType, to_numpy_dtype


@dataclass
class RuleCase:
    """A graph on ``inputs`` built by ``build`` and the same computation in NumPy."""

    inputs: list[tuple[tuple[int, ...], str]]
    build: Callable
    numpy: Callable


def _scalar(b, value):
    return b.scalar(value, "f64")


CASES = {
    "transpose_of_matmul": RuleCase(
        [((3, 4), "f64"), ((4, 2), "f64")],
        lambda b, x, y: b.transpose(b.matmul(x, y), (1, 0)),
        lambda x, y: (x @ y).T,
    ),
    "noop_reshape": RuleCase(
        [((3, 4), "f64")], lambda b, x: b.exp(b.emit("reshape", x, shape=(3, 4))), np.exp
    ),
    "noop_broadcast": RuleCase(
        [((3, 4), "f64")], lambda b, x: b.exp(b.emit("broadcast_to", x, shape=(3, 4))), np.exp
    ),
    "drop_stop_gradient": RuleCase([((3,), "f64")], lambda b, x: b.exp(b.emit("stop_gradient", x)), np.exp),
    "noop_cast": RuleCase([((3,), "f64")], lambda b, x: b.exp(b.emit("cast", x, dtype="f64")), np.exp),
    "noop_transpose": RuleCase(
        [((3, 4), "f64")], lambda b, x: b.exp(b.emit("transpose", x, perm=(0, 1))), np.exp
    ),
    "matmul_transpose_flags": RuleCase(
        [((4, 3), "f64"), ((4, 2), "f64")],
        lambda b, x, y: b.matmul(b.transpose(x, (1, 0)), y),
        lambda x, y: x.T @ y,
    ),
    "double_neg": RuleCase(
        [((3,), "f64")], lambda b, x: b.exp(b.neg(b.neg(x))), lambda x: np.exp(np.negative(np.negative(x)))
    ),
    "reshape_chain": RuleCase(
        [((3, 4), "f64")],
        lambda b, x: b.reshape(b.reshape(x, (12,)), (4, 3)),
        lambda x: x.reshape(12).reshape(4, 3),
    ),
    "broadcast_chain": RuleCase(
        [((4,), "f64")],
        lambda b, x: b.broadcast_to(b.broadcast_to(x, (3, 4)), (2, 3, 4)),
        lambda x: np.broadcast_to(np.broadcast_to(x, (3, 4)), (2, 3, 4)),
    ),
    "double_transpose": RuleCase(
        [((2, 3, 4), "f64")],
        lambda b, x: b.transpose(b.transpose(x, (1, 0, 2)), (0, 2, 1)),
        lambda x: x.transpose(1, 0, 2).transpose(0, 2, 1),
    ),
    "right_identity": RuleCase(
        [((3,), "f64")], lambda b, x: b.exp(b.mul(x, _scalar(b, 1.0))), lambda x: np.exp(x * 1.0)
    ),
    "left_identity": RuleCase(
        [((3,), "f64")], lambda b, x: b.exp(b.add(_scalar(b, 0.0), x)), lambda x: np.exp(0.0 + x)
    ),
    "int_self_sub": RuleCase([((3,), "i64")], lambda b, x: b.sub(x, x), lambda x: x - x),
    "sink_broadcast": RuleCase(
        [((4,), "f64")],
        lambda b, x: b.exp(b.broadcast_to(x, (3, 4))),
        lambda x: np.exp(np.broadcast_to(x, (3, 4))),
    ),
}


def _graph_and_args(case: RuleCase):
    b = Builder("g")
    ins = [b.input(TensorType(shape, dtype)) for shape, dtype in case.inputs]
    graph = b.finish([case.build(b, *ins)])
    rng = np.random.default_rng(0)
    args = []
    for shape, dtype in case.inputs:
        values = rng.integers(-9, 9, shape) if dtype.startswith("i") else rng.standard_normal(shape)
        args.append(values.astype(to_numpy_dtype(dtype)))
    return graph, args


def _simplified(graph, disable=()):
    report = manager.PassReport()
    out = manager.optimize(graph, passes=["simplify", "dce"], report=report, disable_rules=disable)
    return out, report.rule_counts()


def _assert_computes(graph, args, case: RuleCase):
    from bpir.backends.numpy.backend import compile_graph

    (got,) = compile_graph(graph)[0](*args)
    want = case.numpy(*args)
    assert got.shape == want.shape and got.dtype == want.dtype
    np.testing.assert_allclose(got, want, rtol=1e-14, atol=0)


@pytest.mark.parametrize("name", RULES.names())
def test_rule_fires_once_and_computes_what_numpy_does(name):
    case = CASES[name]  # a rule without a case fails here
    graph, args = _graph_and_args(case)
    out, fired = _simplified(graph)
    assert fired == {name: 1}, str(out)
    assert str(out) != str(graph)
    _assert_computes(out, args, case)


@pytest.mark.parametrize("name", RULES.names())
def test_rule_switched_off_does_not_fire_and_the_result_is_unchanged(name):
    case = CASES[name]
    graph, args = _graph_and_args(case)
    out, fired = _simplified(graph, disable={name})
    assert fired == {}, str(out)  # no other rule stands in for it on these graphs
    assert str(out) == str(graph)
    _assert_computes(out, args, case)


def test_every_case_names_a_rule_and_every_rule_says_what_it_does():
    assert set(CASES) == set(RULES.names())
    for rule in RULES:
        assert rule.doc and "\n" not in rule.doc, rule.name


def test_a_mistyped_rule_name_is_refused_naming_the_rules():
    graph, _ = _graph_and_args(CASES["double_neg"])
    with pytest.raises(ValueError, match="unknown rule 'double_negation'.*double_neg"):
        manager.optimize(graph, disable_rules={"double_negation"})


def test_the_pass_report_counts_rules_per_pass_run():
    b = Builder("g")
    x = b.input(TensorType((3,), "f64"))
    y = b.neg(b.neg(b.mul(b.neg(b.neg(x)), b.scalar(1.0, "f64"))))
    report = manager.PassReport()
    manager.optimize(b.finish([y]), passes=["simplify", "dce", "simplify"], report=report)
    first, _, second = report.records
    assert first.rules == {"double_neg": 2, "right_identity": 1} and second.rules == {}
    assert report.rule_counts() == {"double_neg": 2, "right_identity": 1}
    text = str(report)
    assert "double_neg" in text and "right_identity" in text
    assert text.index("double_neg") > text.index("simplify") and "      2x" in text


def test_optimize_without_the_new_options_runs_every_rule():
    graph, args = _graph_and_args(CASES["transpose_of_matmul"])
    report = manager.PassReport()
    out = manager.optimize(graph, report=report)
    assert report.rule_counts() == {"transpose_of_matmul": 1}
    _assert_computes(out, args, CASES["transpose_of_matmul"])


def test_the_public_optimize_switches_a_rule_off():
    graph, args = _graph_and_args(CASES["double_transpose"])
    kept = bpir.optimize(graph, disable_rules={"double_transpose"})
    assert [n.op for n in kept.nodes] == ["transpose", "transpose"]
    assert [n.op for n in bpir.optimize(graph).nodes] == ["transpose"]
    _assert_computes(kept, args, CASES["double_transpose"])


# --- string flags as enums ----------------------------------------------------------------------

# printed by bpir before the flags were enums (an optimized backward graph): the text must
# parse and print back byte for byte
BEFORE = """func @f_bwd(
    residual %r0: f32[4,3] from "input %x",
    residual %r1: f32[4,3] from "%2 = tanh loc(tracer.py:452)",
    cotangent %ct0: f32[],
) -> (f32[3]) {
  %0: f32[1,1] = reshape %ct0 {shape=(1, 1)}               loc(np_reductions.py:56)
  %1: f32[3] = fused %0, %r0, %r1 {shape=(4, 3), reduce="sum", axes=(0,)} loc(tracer.py:439)
    region = func @region(%in0: f32[], %in1: f32[], %in2: f32[]) -> (f32[]) {
        %0: f32[] = mul %in0, %in1                               loc(tracer.py:470)
        %1: f32[] = mul %in2, %in2                               loc(tracer.py:452)
        %2: f32[] = constant {value=1.0}                         loc(tracer.py:452)
        %3: f32[] = sub %2, %1                                   loc(tracer.py:452)
        %4: f32[] = mul %0, %3                                   loc(tracer.py:452)
        return %4
      }
  return %1
}
"""


def test_flags_parse_as_enums_and_print_as_before():
    g = bpir.parse(BEFORE)
    assert str(g) == BEFORE
    assert [g.input_info[i].role for i in range(3)] == [Role.RESIDUAL, Role.RESIDUAL, Role.COTANGENT]
    assert all(type(g.input_info[i].role) is Role for i in range(3))
    (fused,) = [n for n in g.nodes if n.op == "fused"]
    assert fused.attrs["reduce"] is Reduce.SUM and fused.attrs["reduce"] == "sum"
    x, r1, ct = np.ones((4, 3), np.float32), np.full((4, 3), 0.5, np.float32), np.float32(2.0)
    from bpir.backends.numpy.backend import compile_graph

    (got,) = compile_graph(g)[0](x, r1, ct)
    np.testing.assert_allclose(got, (ct * x * (1 - r1 * r1)).sum(axis=0), rtol=1e-6)


def test_an_unknown_role_or_reduction_is_a_parse_error():
    with pytest.raises(bpir.ParseError, match="unknown input role"):
        bpir.parse(BEFORE.replace("residual %r0", "saved %r0"))
    with pytest.raises(bpir.ParseError, match="reduce"):
        bpir.parse(BEFORE.replace('reduce="sum"', 'reduce="mean"'))


def test_plain_strings_still_make_flags():
    assert InputInfo("residual").role is Role.RESIDUAL and InputInfo().role is Role.NONE
    assert f"{Role.COTANGENT} %x" == "cotangent %x" and str(Reduce.MAX) == "max"
    b = Builder("g")
    x = b.input(TensorType((2, 3), "f32"))
    region = Builder("region")
    s = region.input(TensorType((), "f32"))
    body = region.finish([region.exp(s)])
    assert b.emit("fused", x, region=body, shape=(2, 3), reduce="max", axes=(1,)).shape == (2,)
    assert b.nodes[-1].attrs["reduce"] is Reduce.MAX
    plain = Builder("g")
    y = plain.emit("fused", plain.input(TensorType((2, 3), "f32")), region=body, shape=(2, 3))
    assert plain.nodes[-1].attrs["reduce"] is Reduce.NONE and "reduce=" not in str(plain.finish([y]))
