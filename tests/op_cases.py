"""One case per op (and per interesting variant): a plain NumPy / bnp function, which is its
own reference when called on arrays, and a factory of random arguments.

The same cases run on every backend (tests/test_ops.py); keep sizes small so the CUDA
simulator stays fast."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

import bpir.numpy as bnp


@dataclass
class Case:
    name: str
    fn: Callable
    make: Callable  # (rng, dtype) -> tuple of args
    grad: bool = True  # check gradients w.r.t. argument 0 (and argnums)
    argnums: tuple = (0,)
    dtypes: tuple = ("float64", "float32")
    grad_dtype: str = "float64"  # float32 where the case needs a real cast in the graph


def _n(*shape, low=None):
    def make(rng, dt):
        x = rng.standard_normal(shape)
        if low is not None:
            x = np.abs(x) + low
        return x.astype(dt)

    return make


def args(*makers):
    return lambda rng, dt: tuple(m(rng, dt) for m in makers)


def _ints(high, *shape, dtype=np.int64):
    return lambda rng, dt: rng.integers(0, high, size=shape).astype(dtype)


def _bool(*shape):
    return lambda rng, dt: rng.standard_normal(shape) > 0


UNARY = {
    "neg": (np.negative, None),
    "exp": (np.exp, None),
    "log": (np.log, 0.5),
    "log1p": (np.log1p, 0.1),
    "expm1": (np.expm1, None),
    "tanh": (np.tanh, None),
    "sqrt": (np.sqrt, 0.5),
    "abs": (np.abs, 0.1),
    "sin": (np.sin, None),
    "cos": (np.cos, None),
    "reciprocal": (np.reciprocal, 0.5),
    "sigmoid": (bnp.sigmoid, None),
    "rsqrt": (lambda x: 1 / np.sqrt(x), 0.5),
    "square": (np.square, None),
}
# fmt: off
CASES: list[Case] = [
    Case(name, fn, args(_n(3, 4, low=low))) for name, (fn, low) in UNARY.items()
]
CASES += [
    Case("sign", np.sign, args(_n(3, 4, low=None)), grad=False),
    Case("add_broadcast", lambda x, y: x + y, args(_n(3, 4), _n(4)), argnums=(0, 1)),
    Case("sub_scalar", lambda x: 2.5 - x, args(_n(3, 4))),
    Case("mul_broadcast_col", lambda x, y: x * y, args(_n(3, 4), _n(3, 1)), argnums=(0, 1)),
    Case("div", lambda x, y: x / y, args(_n(3, 4), _n(3, 4, low=0.5)), argnums=(0, 1)),
    Case("pow", lambda x, y: x**y, args(_n(3, 4, low=0.5), _n(3, 4)), argnums=(0, 1)),
    Case("pow_scalar", lambda x: x**3, args(_n(3, 4))),
    Case("maximum", np.maximum, args(_n(3, 4), _n(3, 4)), argnums=(0, 1)),
    Case("minimum", np.minimum, args(_n(3, 4), _n(4)), argnums=(0, 1)),
    Case("relu", bnp.relu, args(_n(3, 4))),
    Case("compare", lambda x, y: np.stack([x > y, x >= y, x < y, x <= y, x == y, x != y]),
         args(_n(3, 4), _n(3, 4)), grad=False),
    Case("where", lambda c, x, y: np.where(c, x, y), args(_bool(3, 4), _n(3, 4), _n(3, 4)), argnums=(1, 2)),
    Case("logical", lambda a, b: (a & b) | ~a, args(_bool(3, 4), _bool(3, 4)), grad=False),
    Case("cast", lambda x: np.sin(x.astype(np.float64)) * 2, args(_n(3, 4)), grad_dtype="float32"),
    Case("int_arith", lambda i, j: (i * 3 + j) - np.maximum(i, j), args(_ints(5, 3, 4), _ints(5, 3, 4)),
         grad=False, dtypes=("float64",)),
    Case("int_to_float", lambda i, x: i * x + i / 2, args(_ints(5, 3, 4), _n(3, 4)), argnums=(1,)),
    Case("clip", lambda x: np.clip(x, -0.5, 0.5), args(_n(3, 4))),
    Case("broadcast_to", lambda x: np.broadcast_to(x, (2, 3, 4)) * 1.0, args(_n(3, 1))),
    Case("reshape", lambda x: x.reshape(4, 3) @ np.ones((3, 2)), args(_n(3, 4))),
    Case("transpose", lambda x: np.transpose(x, (2, 0, 1)) * 2.0, args(_n(2, 3, 4))),
    Case("T", lambda x: x.T @ x, args(_n(3, 4))),
    Case("swapaxes", lambda x: np.swapaxes(x, 0, 2) + 1.0, args(_n(2, 3, 4))),
    Case("expand_squeeze", lambda x: np.squeeze(np.expand_dims(x, 1), 1) * x[:, None, :], args(_n(3, 4))),
    Case("slice", lambda x: x[1:, ::2] * 3.0, args(_n(4, 5))),
    Case("index_int", lambda x: x[1] + x[:, -1].sum(), args(_n(4, 5))),
    Case("index_ellipsis", lambda x: x[..., 1:3, None] * 2.0, args(_n(2, 3, 4))),
    Case("concatenate", lambda x, y: np.concatenate([x, y, x], axis=1), args(_n(3, 2), _n(3, 4)), argnums=(0, 1)),
    Case("pad_setitem", lambda x: _setitem(x), args(_n(4, 5))),
    Case("mask_setitem", lambda x: _mask_setitem(x), args(_n(4, 5))),
    Case("sum", lambda x: np.sum(x, axis=1), args(_n(3, 4, 2))),
    Case("sum_keepdims", lambda x: x - np.sum(x, axis=(0, 2), keepdims=True), args(_n(3, 4, 2))),
    Case("mean", lambda x: x.mean(axis=0), args(_n(3, 4))),
    Case("max", lambda x: np.max(x, axis=1), args(_n(3, 4))),
    Case("max_keepdims", lambda x: x.max(axis=-1, keepdims=True) * x, args(_n(3, 4))),
    Case("min", lambda x: x.min(), args(_n(3, 4))),
    Case("var", lambda x: np.var(x, axis=1), args(_n(3, 4))),
    Case("argmax", lambda x: np.argmax(x, axis=1), args(_n(3, 4)), grad=False),
    Case("matmul", lambda a, b: a @ b, args(_n(3, 4), _n(4, 5)), argnums=(0, 1)),
    Case("matmul_batched", np.matmul, args(_n(2, 3, 4), _n(2, 4, 5)), argnums=(0, 1)),
    Case("matmul_broadcast_batch", np.matmul, args(_n(2, 3, 4), _n(4, 5)), argnums=(0, 1)),
    # transposes folded into matmul's transpose_a / transpose_b flags (and the product transposed)
    Case("matmul_transpose_a", lambda a, b: a.T @ b, args(_n(4, 3), _n(4, 5)), argnums=(0, 1)),
    Case("matmul_transpose_b", lambda a, b: np.tanh(a @ b.T), args(_n(3, 4), _n(5, 4)), argnums=(0, 1)),
    Case("matmul_transpose_both", lambda a, b: (a.T @ b.T).T * 2.0, args(_n(4, 3), _n(5, 4)), argnums=(0, 1)),
    Case("matmul_batched_transposed", lambda a, b: a.transpose(0, 2, 1) @ b.transpose(0, 2, 1),
         args(_n(2, 4, 3), _n(2, 5, 4)), argnums=(0, 1)),
    Case("matvec", lambda a, v: np.dot(a, v), args(_n(3, 4), _n(4)), argnums=(0, 1)),
    Case("einsum_bij_bjk", lambda a, b: np.einsum("bij,bjk->bik", a, b), args(_n(2, 3, 4), _n(2, 4, 2)),
         argnums=(0, 1)),
    Case("einsum_outer_sum", lambda a, b: np.einsum("ij,kj->ik", a, b), args(_n(3, 4), _n(2, 4)), argnums=(0, 1)),
    Case("conv2d", lambda x, w: bnp.conv2d(x, w, stride=1, padding=1), args(_n(2, 3, 5, 5), _n(4, 3, 3, 3)),
         argnums=(0, 1)),
    Case("conv2d_strided_dilated_groups",
         lambda x, w: bnp.conv2d(x, w, stride=2, padding=1, dilation=2, groups=2),
         args(_n(1, 4, 7, 6), _n(4, 2, 2, 3)), argnums=(0, 1)),
    Case("conv2d_bias", lambda x, w, b: bnp.conv2d(x, w, b), args(_n(1, 2, 4, 4), _n(3, 2, 2, 2), _n(3)),
         argnums=(0, 1, 2)),
    Case("max_pool2d", lambda x: bnp.max_pool2d(x, 2), args(_n(2, 2, 4, 6))),
    Case("max_pool2d_padded", lambda x: bnp.max_pool2d(x, 3, stride=2, padding=1), args(_n(1, 2, 5, 5))),
    Case("avg_pool2d", lambda x: bnp.avg_pool2d(x, 2, stride=1, padding=1), args(_n(1, 2, 4, 5))),
    Case("take_along_axis", lambda x, i: np.take_along_axis(x, i, axis=1), args(_n(3, 4), _ints(4, 3, 2))),
    Case("gather_rows", lambda x, i: x[i], args(_n(5, 3), _ints(5, 4))),
    Case("pick_labels", lambda x, i: x[np.arange(4), i], args(_n(4, 3), _ints(3, 4))),
    Case("one_hot", lambda i, x: bnp.one_hot(i, 5, dtype=x.dtype) * x, args(_ints(5, 3), _n(3, 5)), argnums=(1,)),
    Case("softmax", bnp.softmax, args(_n(3, 5))),
    Case("log_softmax", lambda x: bnp.log_softmax(x, axis=0), args(_n(3, 5))),
    Case("logsumexp", lambda x: bnp.logsumexp(x, axis=1), args(_n(3, 5))),
    Case("cross_entropy", bnp.cross_entropy, args(_n(4, 5), _ints(5, 4))),
]
# fmt: on


def _setitem(x):
    out = x.copy()
    out[:, 0] = 1.0
    out[1:3, 2:] = out[1:3, 2:] * 2.0
    return out


def _mask_setitem(x):
    out = x.copy()
    out[x < 0] = 0.0
    return out


def _extra_cases() -> list[Case]:
    """Cases kept in topic modules (op_cases_*.py) join the one parametrised suite."""
    import op_cases_indexing
    import op_cases_layers
    import op_cases_numpy
    import op_cases_random

    return [*op_cases_numpy.CASES, *op_cases_indexing.CASES, *op_cases_random.CASES, *op_cases_layers.CASES]


CASES += _extra_cases()
