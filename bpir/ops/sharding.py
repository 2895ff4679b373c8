"""sharding_constraint: pins how a value is split over a device mesh (jax backend; XLA's SPMD
partitioner honours it). Every other backend runs it as the identity (its decomposition).
attrs: spec, one entry per leading dimension: "" (not split) or mesh axis names joined by ","."""

from __future__ import annotations

import re

from .. import attr_types as ty
from ..errors import ShapeError
from ..registry import REQUIRED, Kind, OpDef, register

_AXIS = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def spec_axes(entry: str) -> tuple[str, ...]:
    """The mesh axes of one spec entry ("" -> none)."""
    return tuple(entry.split(",")) if entry else ()


def _rule(types, attrs):
    (t,), spec = types, attrs["spec"]
    if not isinstance(spec, tuple) or len(spec) > len(t.shape):
        raise ShapeError(f"sharding_constraint: spec {spec!r} needs at most one entry per dimension of {t}")
    for entry in spec:
        if not isinstance(entry, str) or not all(_AXIS.fullmatch(a) for a in spec_axes(entry)):
            raise ShapeError(f"sharding_constraint: spec entry {entry!r} is not '' or mesh axis names")
    return [t]


register(OpDef("sharding_constraint", Kind.OTHER, 1, _rule, attrs={"spec": REQUIRED}, attr_types={"spec": ty.SPEC},
               vjp=lambda b, n, cts: [b.emit("sharding_constraint", cts[0], spec=n.attrs["spec"])],
               decompose=lambda b, n: [n.inputs[0]], impl=lambda x, spec: x))  # fmt: skip
