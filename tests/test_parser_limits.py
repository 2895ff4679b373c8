"""Malformed and hostile IR text: every refusal is a ParseError with a line and column (never
another exception, never RecursionError), deep nesting hits explicit limits, wrong operand
counts and mistyped attributes are refused by the parser and the verifier alike."""

from __future__ import annotations

import base64

import numpy as np
import pytest

import bpir
from bpir.attr_types import PLAIN
from bpir.builder import Builder
from bpir.errors import ParseError, VerifyError
from bpir.ir import Graph, Node, Value
from bpir.location import escape, is_clean
from bpir.manifest import MAX_JSON_DEPTH, ArtifactError, loads_json
from bpir.parser import MAX_ATTR_DEPTH, MAX_REGION_DEPTH
from bpir.registry import OPS, REQUIRED, get_op, untyped_attrs
from bpir.types import TensorType
from bpir.verifier import verify

HEAD = "func @f(%x: f32[3], %y: f32[3]) -> (f32[3]) {\n"


def body(line: str, ret: str = "%0") -> str:
    return f"{HEAD}  {line}\n  return {ret}\n}}\n"


def refused(text: str, match: str, line: int | None = None) -> ParseError:
    with pytest.raises(ParseError, match=match) as info:
        bpir.parse(text)
    err = info.value
    assert err.line >= 1 and err.column >= 1
    if line is not None:
        assert err.line == line, str(err)
    return err


# -- the registry's self-check ----------------------------------------------------------------


def test_every_attribute_of_every_op_has_a_declared_type():
    missing = untyped_attrs()
    assert not missing, (
        "attributes without a declared type (add them to the OpDef's attr_types=, see "
        f"bpir/attr_types.py): {', '.join(missing)}"
    )


def test_declared_types_accept_the_defaults_and_name_only_real_attributes():
    get_op("constant")
    for op in OPS.values():
        assert set(op.attr_types) <= set(op.attrs), f"{op.name}: types for unknown attributes"
        for name, default in op.attrs.items():
            if default is not REQUIRED:
                assert op.attr_types[name].check(default) == default, f"{op.name}.{name}"


def test_an_attribute_without_a_declared_type_holds_only_plain_data():
    assert PLAIN.check((1, 2.5, True, "f32")) == (1, 2.5, True, "f32")
    for bad in ("reflect", object(), (1, ("x",)), np.zeros(2)):
        with pytest.raises(TypeError):
            PLAIN.check(bad)


# -- operand counts ---------------------------------------------------------------------------


def test_wrong_operand_count_is_refused_by_the_parser():
    err = refused(body("%0: f32[3] = exp %x, %y"), r"exp takes 1 operand, got 2", line=2)
    assert err.column == 16
    refused(body("%0: f32[3] = add %x"), r"add takes 2 operands, got 1")
    refused(body("%0: f32[3] = where %x, %y"), r"where takes 3 operands, got 2")


def test_wrong_operand_count_is_refused_by_the_verifier():
    x, y = Value(TensorType((3,), "f32"), "x"), Value(TensorType((3,), "f32"), "y")
    out = Value(TensorType((3,), "f32"))
    g = Graph("f", [x, y], [Node("exp", [x, y], {}, [out])], [out])
    with pytest.raises(VerifyError, match=r"\(exp\) takes 1 operands, got 2"):
        verify(g)


# -- attribute types --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "attrs, match",
    [
        ("axes=(0,), keepdims=\"True)\\n__import__('os').system('id')\"", "'keepdims': expected bool"),
        ("axes=(0,), keepdims=1", "'keepdims': expected bool"),
        ("axes=(0.5,)", "'axes': expected tuple"),
        ("axes=0", "'axes': expected tuple"),
        ("axes=(-1,)", "'axes': expected tuple"),
        ('axes=("0",)', "'axes': expected tuple"),
        ("axes=(99999999999999999999,)", "'axes': expected tuple"),
        ("axes=(0,), color=1", "no attribute"),
        ("axes=(0,), axes=(0,)", "given twice"),
        ("axes=dense<[0]>", "'axes': expected tuple"),
    ],
)
def test_mistyped_attributes_are_refused(attrs, match):
    refused(f"func @f(%x: f32[3]) -> (f32[]) {{\n  %0: f32[] = reduce_sum %x {{{attrs}}}\n  return %0\n}}\n",
            match, line=2)  # fmt: skip


def test_the_builder_and_verifier_check_attribute_types_too():
    b = Builder()
    x = b.input(TensorType((3,), "f32"))
    with pytest.raises(TypeError, match="op 'reduce_sum' attribute 'keepdims': expected bool"):
        b.reduce_sum(x, axes=(0,), keepdims="True)\nimport os")
    out = Value(TensorType((), "f32"))
    node = Node("reduce_sum", [x], {"axes": (0,), "keepdims": "yes"}, [out])
    with pytest.raises(VerifyError, match="keepdims"):
        verify(Graph("f", [x], [node], [out]))
    node.attrs = {"axes": (0,), "keepdims": 0}
    with pytest.raises(VerifyError, match="keepdims"):
        verify(Graph("f", [x], [node], [out]))


def test_strings_in_attributes_are_only_fixed_names():
    text = "func @f(%x: f32[3]) -> ({t}[3]) {{\n  %0: {t}[3] = cast %x {{dtype={d}}}\n  return %0\n}}\n"
    assert bpir.parse(text.format(t="f64", d='"f64"')).nodes[0].attrs["dtype"] == "f64"
    refused(text.format(t="f64", d='"f64\\"); import os #"'), "'dtype': expected dtype name")
    refused(text.format(t="f64", d='"object"'), "'dtype': expected dtype name")
    fused = (
        "func @f(%x: f32[3]) -> (f32[]) {{\n  %0: f32[] = fused %x {{shape=(3,), reduce={r}, axes=(0,)}}\n"
    )
    region = "    region = func @r(%a: f32[]) -> (f32[]) {\n        return %a\n      }\n  return %0\n}\n"
    assert bpir.parse(fused.format(r='"sum"') + region).nodes[0].attrs["reduce"] == "sum"
    refused(fused.format(r='"prod"') + region, "'reduce': expected one of")


# -- malformed types and literals ---------------------------------------------------------------


@pytest.mark.parametrize(
    "dims", ["3.5", "-3", "inf", "nan", "1e3", "99999999999999999999999", "x", "4611686018427387905"]
)
def test_malformed_dimensions_are_parse_errors(dims):
    err = refused(f"func @f(%x: f32[{dims}]) -> (f32[]) {{\n}}\n", "expected a dimension", line=1)
    assert err.column == 17


def test_types_too_large_unknown_dtypes_and_unfinished_types_are_parse_errors():
    refused("func @f(%x: f32[4294967296,4294967296]) -> (f32[]) {\n}\n", "more than")
    refused("func @f(%x: u8[3]) -> (f32[]) {\n}\n", "unknown dtype", line=1)
    refused("func @f(%x: f32[3", "expected")
    refused("func @f(%x: f32[3] from 12) -> (f32[3]) {\n  return %x\n}\n", "expected string")
    refused('func @f(%x: f32[3] from "\\q") -> (f32[3]) {\n  return %x\n}\n', "malformed string")


def dense(t: str, payload: str) -> str:
    return f"func @f() -> ({t}) {{\n  %0: {t} = constant {{value=dense<{payload}>}}\n  return %0\n}}\n"


@pytest.mark.parametrize(
    "t, payload, match",
    [
        ("f32[2]", 'b64:"AAAAAAAAAA"', "malformed base64"),  # odd length (10 characters)
        ("f32[2]", 'b64:"AAAA*AAAAAA="', "malformed base64"),
        ("f32[2]", f'b64:"{base64.b64encode(bytes(7)).decode()}"', "holds 7 bytes"),
        ("f32[2]", f'b64:"{base64.b64encode(bytes(12)).decode()}"', "holds 12 bytes"),
        ("bool[2]", f'b64:"{base64.b64encode(bytes([1, 7])).decode()}"', "other than 0 and 1"),
        ("f32[2]", "[1.0, %x]", "expected a number"),
        ("i32[2]", "[1, 2.5]", "not a i32 literal"),
        ("i32[2]", "[1, 99999999999]", "do not fit i32"),
        ("bool[2]", "[true, 2]", "not a bool literal"),
        ("f32[3]", "[1.0, 2.0]", "has 2 elements"),
        ("f32[2]", '"AAAA"', "expected"),
    ],
)
def test_malformed_dense_constants_are_parse_errors(t, payload, match):
    refused(dense(t, payload), match)


@pytest.mark.parametrize(
    "t, value, match",
    [("i32[]", "99999999999", "does not fit i32"), ("i64[]", "1.5", "not a i64 literal"),
     ("i64[]", "nan", "not a i64 literal"), ("bool[]", "1", "not a bool literal"),
     ("f32[3]", "1.0", "written as a scalar"), ("f32[]", '"1.0"', "not a f32 literal"),
     ("f32[]", "(1.0,)", "not a f32 literal"), ("i64[]", "9" * 5000, "out of range")],
)  # fmt: skip
def test_malformed_scalar_constants_are_parse_errors(t, value, match):
    refused(
        f"func @f() -> ({t}) {{\n  %0: {t} = constant {{value={value}}}\n  return %0\n}}\n", match, line=2
    )


def test_good_constants_still_parse():
    g = bpir.parse(dense("f32[2]", f'b64:"{base64.b64encode(np.float32([1, -2]).tobytes()).decode()}"'))
    np.testing.assert_array_equal(g.nodes[0].attrs["value"], [1, -2])
    g = bpir.parse(dense("i64[3]", "[1, -2, 3]"))
    assert g.nodes[0].attrs["value"].dtype == np.int64
    g = bpir.parse("func @f() -> (f32[]) {\n  %0: f32[] = constant {value=-inf}\n  return %0\n}\n")
    assert g.nodes[0].attrs["value"] == -np.inf


# -- depth limits -----------------------------------------------------------------------------


def nested_regions(depth: int) -> str:
    """A fused node whose region holds a fused node whose region ... ``depth`` levels down."""
    lines = ["func @f(%x: f32[]) -> (f32[]) {", "  %0: f32[] = fused %x {shape=()}"]
    for _ in range(depth - 1):
        lines += ["    region = func @r(%a: f32[]) -> (f32[]) {", "  %0: f32[] = fused %a {shape=()}"]
    lines += ["    region = func @r(%a: f32[]) -> (f32[]) {", "  %0: f32[] = neg %a", "  return %0", "}"]
    lines += ["  return %0", "}"] * (depth - 1)
    lines += ["  return %0", "}"]
    return "\n".join(lines) + "\n"


def test_nested_regions_within_the_limit_round_trip():
    g = bpir.parse(nested_regions(MAX_REGION_DEPTH))
    assert str(bpir.parse(str(g))) == str(g)
    verify(g)


@pytest.mark.parametrize("depth", [MAX_REGION_DEPTH + 1, 2000])
def test_deeply_nested_regions_are_a_parse_error(depth):
    refused(nested_regions(depth), f"nested deeper than {MAX_REGION_DEPTH}")


def test_the_verifier_refuses_regions_nested_past_the_limit():
    g = bpir.parse(nested_regions(MAX_REGION_DEPTH))
    node = g.nodes[0]
    x = Value(TensorType((), "f32"))
    out = Value(TensorType((), "f32"))
    deeper = Graph("f", [x], [Node("fused", [x], {**node.attrs, "region": g}, [out])], [out])
    with pytest.raises(VerifyError, match="nested deeper"):
        verify(deeper)


@pytest.mark.parametrize("depth", [MAX_ATTR_DEPTH + 1, 5000])
def test_deeply_nested_attribute_tuples_are_a_parse_error(depth):
    axes = "(" * depth + "0" + ")" * depth
    text = (
        f"func @f(%x: f32[3]) -> (f32[]) {{\n  %0: f32[] = reduce_sum %x {{axes={axes}}}\n  return %0\n}}\n"
    )
    refused(text, f"nested deeper than {MAX_ATTR_DEPTH}", line=2)


def test_deeply_nested_json_is_a_value_error_not_recursion():
    deep = '["tuple", [' * 100_000 + '"*"' + "]]" * 100_000
    with pytest.raises(ArtifactError, match=f"nested deeper than {MAX_JSON_DEPTH}"):
        loads_json(deep, "manifest.json")
    ok = '["tuple", [' * 10 + '"*"' + "]]" * 10
    assert loads_json(ok, "manifest.json")[0] == "tuple"
    assert loads_json('{"a": "[[[[{{{{"}', "m") == {"a": "[[[[{{{{"}  # brackets in strings
    with pytest.raises(ArtifactError, match="duplicate key"):
        loads_json('{"a": 1, "a": 2}', "m")
    with pytest.raises(ArtifactError, match="NaN is not JSON"):
        loads_json('{"a": NaN}', "m")


# -- locations ---------------------------------------------------------------------------------


@pytest.mark.parametrize("char", ["\r", "\x0b", "\x0c", "\x1c", "\x85", "\u2028", "\u2029", "\x00", "\u200e"])
def test_control_characters_in_loc_are_refused(char):
    text = (
        f"func @f(%x: f32[3]) -> (f32[3]) {{\n  %0: f32[3] = neg %x loc(m.py:1{char}x = 1)\n  return %0\n}}\n"
    )
    refused(text, "loc", line=2)


def test_locations_are_escaped_wherever_they_are_printed():
    assert escape("m.py:3") == "m.py:3"
    bad = "m.py:3\r__import__('os')\u2028x)\n"
    assert is_clean(escape(bad)) and escape(escape(bad)) == escape(bad)
    b = Builder()
    x = b.input(TensorType((3,), "f32"), "x")
    y = b.emit("neg", x, loc=bad)
    g = b.finish([y])
    text = str(g)
    assert len(text.splitlines()) == 4 and "\r" not in text and "\u2028" not in text
    assert bpir.parse(text).nodes[0].loc == escape(bad)
    from bpir.backends.numpy.backend import generate

    source, _ = generate(g)
    assert source.count("\n") == len(source.splitlines()) and escape(bad) in source
    compile(source, "<test>", "exec")
