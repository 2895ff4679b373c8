"""Ops without tensor inputs (constant, iota) and ops that carry a nested graph
(custom_vjp_call, fused)."""

from __future__ import annotations

import numpy as np

from .. import attr_types as ty
from .. import interpret
from ..builder import inline
from ..errors import ShapeError
from ..ir import Node, Value
from ..registry import REQUIRED, Kind, OpDef, register
from ..types import TensorType, dtype_name, to_numpy_dtype
from . import kernels


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
               differentiable=False, attr_types={"value": ty.ARRAY}, impl=lambda value: value))  # fmt: skip
register(OpDef("iota", Kind.SOURCE, 0, _iota_rule,
               attrs={"shape": REQUIRED, "axis": 0, "dtype": "i64"}, differentiable=False,
               attr_types={"shape": ty.SHAPE, "axis": ty.NONNEG, "dtype": ty.DTYPE},
               impl=lambda shape, axis, dtype: kernels.iota(shape, axis, to_numpy_dtype(dtype))))  # fmt: skip


# stop_gradient: the identity whose gradient is zero (log-sum-exp's max shift, straight-through
# estimators). Autodiff stops at it; after autodiff it is the identity (simplify removes it).
register(OpDef("stop_gradient", Kind.OTHER, 1, lambda types, a: [types[0]], differentiable=False,
               decompose=lambda b, node: [node.inputs[0]], impl=lambda x: x))  # fmt: skip


# -- custom_vjp_call: a function with a user-given VJP ---------------------------------------
# attrs: fwd (inputs -> outputs + residuals), bwd (residuals + cotangents -> input cotangents),
# num_outputs. The node's outputs are fwd's outputs, residuals included, so that autodiff can
# hand the residuals to bwd. Passes inline fwd before code generation (see passes.inline_calls).


def _custom_rule(types, a):
    fwd = a["fwd"]
    if [v.type for v in fwd.inputs] != list(types):
        raise ShapeError("arguments " + ", ".join(map(str, types)) + " do not match the "
                         "custom_vjp function's signature")  # fmt: skip
    if a["num_outputs"] > len(fwd.outputs):
        raise ShapeError(f"num_outputs={a['num_outputs']} but fwd returns {len(fwd.outputs)} values")
    return [v.type for v in fwd.outputs]


def _custom_vjp(b, node, cts):
    # The outputs' cotangents go through the user's bwd. Residual outputs get cotangents too
    # when the backward graph itself is differentiated (grad of grad): those flow through the
    # fwd graph's own VJP rules, as in JAX (fwd is re-emitted for that; DCE drops what is unused).
    a = node.attrs
    n = a["num_outputs"]
    outs = node.outputs
    out_cts, res_cts = cts[:n], cts[n:]
    grads: list = [None] * len(node.inputs)
    if any(ct is not None for ct in out_cts):
        out_cts = [ct if ct is not None else b.zeros(v.type) for ct, v in zip(out_cts, outs[:n])]
        grads = inline(b, a["bwd"], list(outs[n:]) + out_cts)
    if any(ct is not None for ct in res_cts):
        from ..autodiff import backward

        fwd = a["fwd"]
        env = dict(zip(fwd.inputs, node.inputs, strict=True))
        for m in fwd.nodes:
            copies = [Value(v.type) for v in m.outputs]
            b.nodes.append(Node(m.op, [env[v] for v in m.inputs], dict(m.attrs), copies, m.loc))
            env.update(zip(m.outputs, copies))
        extra = backward(b, fwd, env, list(fwd.inputs), [None] * n + list(res_cts))
        grads = [g if e is None else e if g is None else b.add(g, e) for g, e in zip(grads, extra)]
    return grads


def _custom_impl(*args, fwd, bwd, num_outputs):
    """The primal computation: the fwd graph, residuals included (as the node's outputs are)."""
    return tuple(interpret.run(fwd, args))


register(OpDef("custom_vjp_call", Kind.OTHER, None, _custom_rule,
               attrs={"fwd": REQUIRED, "bwd": REQUIRED, "num_outputs": REQUIRED},
               attr_types={"fwd": ty.REGION, "bwd": ty.REGION, "num_outputs": ty.NONNEG},
               vjp=_custom_vjp, impl=_custom_impl))  # fmt: skip
