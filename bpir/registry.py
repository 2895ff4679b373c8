"""The op registry: each op is defined once (attributes, type rule, kind, categories, VJP,
decomposition, reference implementation)."""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .attr_types import PLAIN, AttrType
from .types import TensorType

if TYPE_CHECKING:
    from .builder import Builder
    from .ir import Node, Value


class Kind(enum.Enum):
    ELEMENTWISE = "elementwise"
    BROADCAST = "broadcast"
    REDUCTION = "reduction"
    CONTRACTION = "contraction"
    LAYOUT = "layout"
    SOURCE = "source"
    FUSED = "fused"
    OTHER = "other"


TypeRule = Callable[[list[TensorType], dict[str, Any]], list[TensorType]]
# vjp(builder, node, cotangents) -> one gradient per input (None = zero / not differentiable)
VjpRule = Callable[["Builder", "Node", list["Value"]], list["Value | None"]]
# decompose(builder, node) -> replacement outputs built from simpler ops
Decomposition = Callable[["Builder", "Node"], list["Value"]]
# impl(*input arrays, **attrs) -> the output array (a tuple of them for a multi-output op), in
# plain NumPy: the op's meaning, run by constant folding and the eager path (bpir.interpret);
# an op without one (fused) is run through its decomposition
Impl = Callable[..., Any]


@dataclass(frozen=True)
class OpDef:
    """Everything bpir knows about an op. ``attrs`` maps attribute name to its default
    (``REQUIRED`` when the caller must give it); ``attr_types`` maps each attribute name to its
    declared type (``bpir.attr_types``), checked wherever attributes enter a graph; the op's
    identity is (name, attrs)."""

    name: str
    kind: Kind
    arity: int | None  # None: variadic
    infer: TypeRule
    attrs: dict[str, Any] = field(default_factory=dict)
    vjp: VjpRule | None = None
    decompose: Decomposition | None = None
    differentiable: bool = True
    view: bool = False  # the result can be a strided view of the input (no arithmetic, no copy)
    float_only: bool = False  # defined on floating-point operands only (the type rule refuses others)
    attr_types: dict[str, AttrType] = field(default_factory=dict)
    impl: Impl | None = None


REQUIRED = object()
OPS: dict[str, OpDef] = {}


def register(op: OpDef) -> OpDef:
    if op.name in OPS:
        raise ValueError(f"op {op.name!r} registered twice")
    OPS[op.name] = op
    return op


def get_op(name: str) -> OpDef:
    op = OPS.get(name)
    if op is None:
        from . import ops  # noqa: F401  (registers the op set on first use)

        op = OPS.get(name)
        if op is None:
            raise KeyError(f"unknown op {name!r}")
    return op


def freeze(value: Any) -> Any:
    """Attribute values are plain, hashable data: lists become tuples, numpy scalars Python ones."""
    if isinstance(value, (list, tuple)):
        return tuple(freeze(v) for v in value)
    if isinstance(value, np.generic):
        return value.item()
    return value


def normalize_attrs(op: OpDef, attrs: dict[str, Any]) -> dict[str, Any]:
    """The op's full attribute dict: given values checked against their declared types (an
    attribute without one may hold only ``attr_types.PLAIN`` data), defaults filled in."""
    unknown = set(attrs) - set(op.attrs)
    if unknown:
        raise TypeError(f"op {op.name!r} has no attribute(s) {sorted(unknown)}")
    out = {}
    for name, default in op.attrs.items():
        if name in attrs:
            try:  # declared types normalise (lists, NumPy scalars) as they check
                kind = op.attr_types.get(name)
                out[name] = kind.check(attrs[name]) if kind else PLAIN.check(freeze(attrs[name]))
            except TypeError as e:
                raise TypeError(f"op {op.name!r} attribute {name!r}: {e}") from None
        elif default is REQUIRED:
            raise TypeError(f"op {op.name!r} needs attribute {name!r}")
        else:
            out[name] = default
    return out


def ops_without_impl() -> list[str]:
    """Every registered op lacking a reference implementation (the registry's self-check)."""
    get_op("constant")  # registers the op set
    return [op.name for op in OPS.values() if op.impl is None]


def untyped_attrs() -> list[str]:
    """``op.attr`` for every registered attribute without a declared type (the registry's
    self-check: each must be declared in its OpDef's ``attr_types``)."""
    get_op("constant")  # registers the op set
    return [f"{op.name}.{a}" for op in OPS.values() for a in op.attrs if a not in op.attr_types]
