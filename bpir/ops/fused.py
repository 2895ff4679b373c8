"""The fused op: a region of scalar elementwise ops run over one iteration space, optionally
followed by a reduction of its output (a fused reduction prologue).

attrs: region (Graph of rank-0 values, one input per node input), shape (the iteration
space; every input broadcasts to it NumPy-style), reduce (``Reduce``: "" | "sum" | "max"), axes, keepdims,
unreduced (with a reduction: how many leading region outputs are written at the full iteration
shape as well; the rest are reduced — e.g. relu-backward's product for the next matmul plus
its column sums for the bias gradient, in one pass).
Its decomposition (broadcast, inline, reduce) lets a backend without loops run it as plain ops."""

from __future__ import annotations

from .. import attr_types as ty
from ..errors import ShapeError
from ..ir import Graph, StrFlag
from ..registry import REQUIRED, Kind, OpDef, register
from ..types import TensorType
from .layout import broadcast_shapes
from .reduction import check_axes, reduced_shape


class Reduce(StrFlag):
    """What a fused node does with its region's (reduced) outputs: nothing, sum or max."""

    NONE = ""
    SUM = "sum"
    MAX = "max"


def _fused_rule(types, a):
    region, shape = a["region"], a["shape"]
    if not isinstance(region, Graph):
        raise ShapeError("fused needs a region graph")
    if len(region.inputs) != len(types):
        raise ShapeError(f"region takes {len(region.inputs)} inputs, node has {len(types)}")
    for t, v in zip(types, region.inputs):
        if broadcast_shapes(t.shape, shape) != shape:
            raise ShapeError(f"input {t} does not broadcast to the iteration space {shape}")
        if v.type != TensorType((), t.dtype):
            raise ShapeError(f"region input {v.type} does not match node input {t}")
    if any(v.shape != () for v in region.outputs):
        raise ShapeError("region outputs must be scalars")
    if a["reduce"] not in ("", "sum", "max"):
        raise ShapeError(f"unknown reduction {a['reduce']!r}")
    kept = a["unreduced"]
    if a["reduce"] and not 0 <= kept < len(region.outputs) or not a["reduce"] and kept:
        raise ShapeError(f"unreduced={kept} needs a reduction and fewer than {len(region.outputs)} outputs")
    if a["reduce"]:
        check_axes(TensorType(shape, "f32"), a["axes"])
    out_shape = reduced_shape(shape, a["axes"], a["keepdims"]) if a["reduce"] else shape
    return [TensorType(shape if i < kept else out_shape, v.dtype) for i, v in enumerate(region.outputs)]


def decompose_fused(b, node):
    a = node.attrs
    args = [b.broadcast_to(v, a["shape"]) if v.shape != () else v for v in node.inputs]
    region = a["region"]
    # the region's scalar types widen to the iteration space: re-emit op by op with type rules
    env = dict(zip(region.inputs, args))
    for n in region.nodes:
        if n.op == "constant":
            outs = [b.emit("constant", value=n.attrs["value"], loc=n.loc)]
        else:
            res = b.emit(n.op, *[env[v] for v in n.inputs], loc=n.loc, **n.attrs)
            outs = list(res) if isinstance(res, tuple) else [res]
        env.update(zip(n.outputs, outs))
    outs = []
    for i, v in enumerate(region.outputs):
        r = env[v]
        if r.shape != a["shape"]:
            r = b.broadcast_to(r, a["shape"])
        if a["reduce"] and i >= a["unreduced"]:
            r = b.emit("reduce_" + a["reduce"], r, axes=a["axes"], keepdims=a["keepdims"])
        outs.append(r)
    return outs


register(OpDef("fused", Kind.FUSED, None, _fused_rule,
               attrs={"region": REQUIRED, "shape": REQUIRED, "reduce": Reduce.NONE, "axes": (), "keepdims": False,
                      "unreduced": 0},
               attr_types={"region": ty.REGION, "shape": ty.SHAPE, "reduce": ty.EnumOf(Reduce),
                           "axes": ty.AXES, "keepdims": ty.BOOL, "unreduced": ty.NONNEG},
               decompose=decompose_fused))  # fmt: skip
