"""The registry's type rules, op by op and dtype by dtype: what each elementwise and reduction
op accepts, what it returns and what it refuses with a ShapeError (written from NumPy's rules;
kills mutants of the rules that no value test can see)."""

from __future__ import annotations

import pytest

from bpir.builder import Builder
from bpir.errors import ShapeError
from bpir.ops.elementwise import COMPARISONS, LOGICAL
from bpir.registry import OPS, get_op
from bpir.types import TensorType

DTYPES = ["f16", "f32", "f64", "i32", "i64", "bool"]
FLOATS = {"f16", "f32", "f64"}
NUMERIC = FLOATS | {"i32", "i64"}
# op -> dtypes it accepts (result dtype: the operands' unless the op says otherwise)
get_op("constant")  # registers the op set
FLOAT_ONLY = [op.name for op in OPS.values() if op.float_only and op.arity == 1]
UNARY = {op: FLOATS for op in FLOAT_ONLY} | {"neg": NUMERIC, "logical_not": {"bool"}}
BINARY = {"sub": NUMERIC, **{op: {"bool"} for op in LOGICAL}}
BINARY_ANY = ["add", "mul", "maximum", "minimum", *COMPARISONS]  # every dtype


def t(shape, dtype):
    return TensorType(shape, dtype)


def emit(op, *types, **attrs):
    b = Builder("g")
    return b.emit(op, *[b.input(ty) for ty in types], **attrs)


@pytest.mark.parametrize("dtype", DTYPES)
def test_unary_ops_accept_exactly_their_dtypes(dtype):
    for op, ok in UNARY.items():
        if dtype in ok:
            assert emit(op, t((2, 3), dtype)).type == t((2, 3), dtype), op
        else:
            with pytest.raises(ShapeError):
                emit(op, t((2, 3), dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_binary_ops_accept_exactly_their_dtypes(dtype):
    for op, ok in BINARY.items():
        if dtype in ok:
            assert emit(op, t((2, 3), dtype), t((2, 3), dtype)).type == t((2, 3), dtype), op
        else:
            with pytest.raises(ShapeError):
                emit(op, t((2, 3), dtype), t((2, 3), dtype))
    for op in BINARY_ANY:
        want = "bool" if op in COMPARISONS else dtype
        assert emit(op, t((2, 3), dtype), t((), dtype)).type == t((2, 3), want), op
        assert emit(op, t((), dtype), t((2, 3), dtype)).type == t((2, 3), want), op


def test_elementwise_operands_must_agree():
    """Same dtype; same shape or rank-0 (broadcasting is explicit in the IR)."""
    for op in ("add", "gt", "pow", "div"):
        with pytest.raises(ShapeError, match="dtypes"):
            emit(op, t((3,), "f32"), t((3,), "f64"))
        with pytest.raises(ShapeError, match="differ"):
            emit(op, t((3, 1), "f64"), t((3, 4), "f64"))
        assert emit(op, t((), "f64"), t((), "f64")).shape == ()


def test_where_and_cast():
    assert emit("where", t((3,), "bool"), t((3,), "i32"), t((), "i32")).type == t((3,), "i32")
    with pytest.raises(ShapeError, match="condition must be bool"):
        emit("where", t((3,), "f64"), t((3,), "f64"), t((3,), "f64"))
    with pytest.raises(ShapeError):
        emit("where", t((3,), "bool"), t((3,), "f64"), t((3,), "f32"))
    with pytest.raises(ShapeError):
        emit("where", t((3,), "bool"), t((4,), "f64"), t((4,), "f64"))
    assert emit("cast", t((2, 3), "i64"), dtype="f16").type == t((2, 3), "f16")


@pytest.mark.parametrize("op", ["reduce_sum", "reduce_max"])
def test_reductions(op):
    x = t((2, 3, 4), "i32")
    assert emit(op, x, axes=(0, 2), keepdims=False).type == t((3,), "i32")
    assert emit(op, x, axes=(1,), keepdims=True).type == t((2, 1, 4), "i32")
    assert emit(op, x, axes=(0, 1, 2), keepdims=False).type == t((), "i32")
    for axes in [(2, 0), (1, 1), (3,)]:
        with pytest.raises(ShapeError, match="sorted, unique and within the rank"):
            emit(op, x, axes=axes, keepdims=False)
    with pytest.raises(TypeError, match=r"expected tuple\[int>=0"):  # the attribute type: axes >= 0
        emit(op, x, axes=(-1,), keepdims=False)
    assert emit("argmax", t((2, 3), "f32"), axis=1, keepdims=False).type == t((2,), "i64")
    assert emit("argmax", t((2, 3), "f32"), axis=0, keepdims=True).type == t((1, 3), "i64")
