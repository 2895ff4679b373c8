"""Ops without tensor inputs (constant, iota) and ops that carry a nested graph
(custom_vjp_call, fused)."""

from __future__ import annotations

import numpy as np

from ..builder import inline
from ..errors import ShapeError
from ..registry import REQUIRED, Kind, OpDef, register
from ..types import TensorType, dtype_name


def _constant_rule(types, a):
    value = a["value"]
    if not isinstance(value, np.ndarray):
        raise ShapeError(f"constant value must be a numpy array, got {type(value).__name__}")
    return [TensorType(value.shape, dtype_name(value.dtype))]


def _iota_rule(types, a):
    shape, axis = a["shape"], a["axis"]
    if not 0 <= axis < len(shape):
        raise ShapeError(f"iota axis {axis} out of range for shape {shape}")
    return [TensorType(shape, a["dtype"])]


register(OpDef("constant", Kind.SOURCE, 0, _constant_rule, attrs={"value": REQUIRED},
               differentiable=False))  # fmt: skip
register(OpDef("iota", Kind.SOURCE, 0, _iota_rule,
               attrs={"shape": REQUIRED, "axis": 0, "dtype": "i64"}, differentiable=False))  # fmt: skip


# -- custom_vjp_call: a function with a user-given VJP ---------------------------------------
# attrs: fwd (inputs -> outputs + residuals), bwd (residuals + cotangents -> input cotangents),
# num_outputs. The node's outputs are fwd's outputs, residuals included, so that autodiff can
# hand the residuals to bwd. Passes inline fwd before code generation (see passes.inline_calls).


def _custom_rule(types, a):
    fwd = a["fwd"]
    if [v.type for v in fwd.inputs] != list(types):
        raise ShapeError("arguments " + ", ".join(map(str, types)) + " do not match the "
                         "custom_vjp function's signature")  # fmt: skip
    return [v.type for v in fwd.outputs]


def _custom_vjp(b, node, cts):
    a = node.attrs
    n = a["num_outputs"]
    outs = node.outputs
    cts = [ct if ct is not None else b.zeros(v.type) for ct, v in zip(cts[:n], outs[:n])]
    return inline(b, a["bwd"], list(outs[n:]) + cts)


register(OpDef("custom_vjp_call", Kind.OTHER, None, _custom_rule,
               attrs={"fwd": REQUIRED, "bwd": REQUIRED, "num_outputs": REQUIRED},
               vjp=_custom_vjp))  # fmt: skip
