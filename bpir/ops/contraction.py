"""Contractions: batched matmul and conv2d (NCHW / OIHW), with conv's two gradient ops.

conv2d, conv2d_input_grad and conv2d_weight_grad are bilinear and close under VJP, so
convolutions are differentiable to any order."""

from __future__ import annotations

import numpy as np

from .. import attr_types as ty
from ..errors import ShapeError
from ..registry import REQUIRED, Kind, OpDef, register
from ..types import TensorType
from . import kernels, windows


def _matmul_rule(types, attrs):
    a, b = types
    if a.ndim < 2 or b.ndim < 2:
        raise ShapeError(f"matmul wants operands of rank >= 2, got {a.shape} and {b.shape}")
    m, k = (a.shape[-1], a.shape[-2]) if attrs["transpose_a"] else a.shape[-2:]
    k2, n = (b.shape[-1], b.shape[-2]) if attrs["transpose_b"] else b.shape[-2:]
    if a.shape[:-2] != b.shape[:-2] or k != k2:
        flags = "".join(f" {f}" for f in ("transpose_a", "transpose_b") if attrs[f])
        raise ShapeError(f"cannot multiply {a.shape} by {b.shape}{flags} (want [...,m,k] @ [...,k,n])")
    if a.dtype != b.dtype:
        raise ShapeError(f"operand dtypes {a.dtype} and {b.dtype} differ")
    return [TensorType((*a.shape[:-2], m, n), a.dtype)]


def swap_last(b, x):
    perm = list(range(x.type.ndim))
    perm[-2:] = perm[-1], perm[-2]
    return b.transpose(x, perm)


def _matmul_vjp(b, node, cts):
    """C = A' @ B' with A' = A^T when transpose_a (B' likewise): dA' = G B'^T, dB' = A'^T G, written
    as matmuls with transpose flags so no transpose is materialised."""
    (x, y), (g,) = node.inputs, cts
    ta, tb = node.attrs["transpose_a"], node.attrs["transpose_b"]
    dx = b.matmul(y, g, transpose_a=tb, transpose_b=True) if ta else b.matmul(g, y, transpose_b=not tb)
    dy = b.matmul(g, x, transpose_a=True, transpose_b=ta) if tb else b.matmul(x, g, transpose_a=not ta)
    return [dx, dy]


def _matmul_impl(a, b, transpose_a, transpose_b):
    return np.matmul(
        np.swapaxes(a, -1, -2) if transpose_a else a, np.swapaxes(b, -1, -2) if transpose_b else b
    )


# transpose_a / transpose_b: the operand's last two axes are swapped before multiplying (BLAS's
# transpose flags, lax.dot_general's dimension numbers, strided reads on CUDA)
register(OpDef("matmul", Kind.CONTRACTION, 2, _matmul_rule, attrs={"transpose_a": False, "transpose_b": False},
               attr_types={"transpose_a": ty.BOOL, "transpose_b": ty.BOOL}, vjp=_matmul_vjp,
               impl=_matmul_impl))  # fmt: skip

CONV_ATTRS = {"stride": (1, 1), "padding": (0, 0), "dilation": (1, 1), "groups": 1}
CONV_TYPES = {"stride": ty.POSITIVE_PAIR, "padding": ty.NONNEG_PAIR, "dilation": ty.POSITIVE_PAIR,
              "groups": ty.POSITIVE}  # fmt: skip


def conv_out_hw(hw, khw, a) -> tuple[int, int]:
    out = []
    for d, k, s, p, dl in zip(hw, khw, a["stride"], a["padding"], a["dilation"]):
        n = (d + 2 * p - dl * (k - 1) - 1) // s + 1
        if n < 1:
            raise ShapeError(f"kernel {khw} (dilation {a['dilation']}) does not fit input {hw} "
                             f"with padding {a['padding']}")  # fmt: skip
        out.append(n)
    return tuple(out)


def _check_conv(x: TensorType, w: TensorType, a) -> None:
    if x.ndim != 4 or w.ndim != 4:
        raise ShapeError(f"conv2d wants x NCHW and w OIHW, got {x.shape} and {w.shape}")
    g = a["groups"]
    if x.shape[1] != w.shape[1] * g or w.shape[0] % g:
        raise ShapeError(f"channels of x {x.shape} and w {w.shape} do not fit groups={g}")
    if x.dtype != w.dtype:
        raise ShapeError(f"operand dtypes {x.dtype} and {w.dtype} differ")


def _conv_rule(types, a):
    x, w = types
    _check_conv(x, w, a)
    oh, ow = conv_out_hw(x.shape[2:], w.shape[2:], a)
    return [TensorType((x.shape[0], w.shape[0], oh, ow), x.dtype)]


def _input_grad_rule(types, a):
    dy, w = types
    x = TensorType((dy.shape[0], w.shape[1] * a["groups"], *a["input_hw"]), dy.dtype)
    if _conv_rule([x, w], a)[0] != dy:
        raise ShapeError(f"cotangent {dy.shape} does not fit conv of {x.shape} by {w.shape}")
    return [x]


def _weight_grad_rule(types, a):
    x, dy = types
    w = TensorType((dy.shape[1], x.shape[1] // a["groups"], *a["kernel_hw"]), x.dtype)
    if _conv_rule([x, w], a)[0] != dy:
        raise ShapeError(f"cotangent {dy.shape} does not fit conv of {x.shape} by {w.shape}")
    return [w]


def _conv_attrs(node):
    return {k: node.attrs[k] for k in CONV_ATTRS}


def _conv_vjp(b, node, cts):
    (x, w), (g,) = node.inputs, cts
    a = _conv_attrs(node)
    return [
        b.conv2d_input_grad(g, w, input_hw=x.shape[2:], **a),
        b.conv2d_weight_grad(x, g, kernel_hw=w.shape[2:], **a),
    ]


def _input_grad_vjp(b, node, cts):
    (dy, w), (g,) = node.inputs, cts
    a = _conv_attrs(node)
    return [b.conv2d(g, w, **a), b.conv2d_weight_grad(g, dy, kernel_hw=w.shape[2:], **a)]


def _weight_grad_vjp(b, node, cts):
    (x, dy), (g,) = node.inputs, cts
    a = _conv_attrs(node)
    return [b.conv2d_input_grad(dy, g, input_hw=x.shape[2:], **a), b.conv2d(x, g, **a)]


register(OpDef("conv2d", Kind.CONTRACTION, 2, _conv_rule, attrs=dict(CONV_ATTRS), vjp=_conv_vjp,
               decompose=windows.decompose_conv2d, attr_types=CONV_TYPES, impl=kernels.conv2d))  # fmt: skip
register(OpDef("conv2d_input_grad", Kind.CONTRACTION, 2, _input_grad_rule,
               attrs={**CONV_ATTRS, "input_hw": REQUIRED}, vjp=_input_grad_vjp,
               decompose=windows.decompose_conv2d_input_grad, attr_types={**CONV_TYPES, "input_hw": ty.NONNEG_PAIR},
               impl=kernels.conv2d_input_grad))  # fmt: skip
register(OpDef("conv2d_weight_grad", Kind.CONTRACTION, 2, _weight_grad_rule,
               attrs={**CONV_ATTRS, "kernel_hw": REQUIRED}, vjp=_weight_grad_vjp,
               decompose=windows.decompose_conv2d_weight_grad, attr_types={**CONV_TYPES, "kernel_hw": ty.NONNEG_PAIR},
               impl=kernels.conv2d_weight_grad))  # fmt: skip
