"""Op cases for the shared suite (tests/test_ops.py): indexing. Same `Case` and helpers as op_cases.

Gathers, scatters (plain, augmented, np.add.at), boolean-mask read-modify-write, views written
through, np.pad, the split family and sliding_window_view. Each function is its own NumPy
reference, so each copies before writing."""

from __future__ import annotations

import numpy as np
from op_cases import Case, _bool, _ints, _n, args


def _signed_ints(high, *shape):
    return lambda rng, dt: rng.integers(-high, high, size=shape).astype(np.int64)


def _set_rows(x, i, v):
    z = x.copy()
    z[i] = v  # repeated rows: the last write stays, as in NumPy
    return z


def _aug_rows(x, i, v):
    z = x.copy()
    z[i] += v  # repeated rows: one update stays, not the sum
    return z


def _labels_minus_one(x, y):
    dx = x * 2.0
    dx[np.arange(x.shape[0]), y] -= 1
    return dx


def _range_labels(x, y):
    return x[range(x.shape[0]), y] * 3.0


def _add_at(x, i, v):
    z = x.copy()
    np.add.at(z, i, v)
    return z


def _subtract_at_pairs(x, r, c, v):
    z = x.copy()
    np.subtract.at(z, (r, c), v)
    return z


def _set_cols(x, i, v):
    z = x.copy()
    z[:, i] = v
    return z


def _set_slice_and_index(x, i):
    z = x.copy()
    z[i, 1:3] = -1.0
    z[[0, 0], [1, 2]] *= 2.0
    return z


def _mask_rmw(x):
    pos, neg = x >= 0, x < 0
    z = np.zeros_like(x)
    z[pos] = np.exp(-x[pos])
    z[neg] = np.exp(x[neg])
    top = np.ones_like(x)
    top[neg] = z[neg]
    return top / (1 + z)


def _mask_aug_and_rows(x, m):
    z = x.copy()
    z[z > 0.5] += 1.0
    z[m] = 0.0  # a mask over the leading axis clears whole rows
    return z


def _view_writes(x):
    y = x.copy()
    row = y[0]
    row[:] = 0.5
    col = y[:, 1]
    col *= 2
    t = y.T
    t[0] = t[0] + 1.0
    y[1][2] = 9.0
    r = y.reshape(-1)
    r[3:5] += x[2, :2]
    return y


def _fill_traced(x):
    out = np.zeros((2, *x.shape), like=x)
    out[0] = x
    out[1, :, 1] = x[:, 0] ** 2
    return out


def _splits(x):
    a, b = np.hsplit(x, 2)
    c, d, e = np.array_split(x, 3, axis=0)
    f, g = np.vsplit(x, [1])
    return a * b + np.sum(c) - d.sum() + e.mean() + f.sum() * g[0, :2]


# fmt: off
CASES: list = [
    Case("gather_cols", lambda x, i: x[:, i] * 2.0, args(_n(3, 5), _ints(5, 4))),
    Case("gather_pairs", lambda x, r, c: x[r, c], args(_n(4, 5), _ints(4, 6), _ints(5, 6))),
    Case("gather_negative", lambda x, i: x[i], args(_n(5, 3), _signed_ints(5, 2, 3))),
    Case("gather_range_labels", _range_labels, args(_n(4, 3), _ints(3, 4))),
    Case("gather_list_repeats", lambda x: x[[0, 2, 2, -1]] * 1.5, args(_n(4, 3))),
    Case("gather_3d_nonadjacent", lambda x, i, j: x[i, :, j], args(_n(3, 4, 5), _ints(3, 2), _ints(5, 2))),
    Case("gather_3d_middle", lambda x, i: x[:, i, 1:], args(_n(2, 4, 3), _ints(4, 2, 2))),
    Case("reverse", lambda x: x[::-1] + x[:, ::-2].sum(), args(_n(4, 5))),
    Case("reverse_index", lambda x: x[1, ::-2] * x[-1, 3:0:-1].sum(), args(_n(3, 6))),
    Case("scatter_rows", _set_rows, args(_n(5, 3), _ints(5, 4), _n(4, 3)), argnums=(0, 2)),
    Case("scatter_aug_rows", _aug_rows, args(_n(5, 3), _ints(5, 4), _n(4, 3)), argnums=(0, 2)),
    Case("scatter_labels_minus_one", _labels_minus_one, args(_n(4, 3), _ints(3, 4))),
    Case("scatter_cols", _set_cols, args(_n(3, 5), _ints(5, 2), _n(3, 2)), argnums=(0, 2)),
    Case("scatter_slice_and_const", _set_slice_and_index, args(_n(4, 5), _ints(4, 2))),
    Case("add_at", _add_at, args(_n(5, 3), _ints(5, 6), _n(6, 3)), argnums=(0, 2)),
    Case("subtract_at_pairs", _subtract_at_pairs, args(_n(3, 4), _ints(3, 5), _ints(4, 5), _n(5)),
         argnums=(0, 3)),
    Case("mask_rmw_sigmoid", _mask_rmw, args(_n(3, 4))),
    Case("mask_aug_rows", _mask_aug_and_rows, args(_n(3, 4), _bool(3))),
    Case("view_writes", _view_writes, args(_n(3, 4))),
    Case("fill_traced_array", _fill_traced, args(_n(3, 2))),
    Case("pad_constant", lambda x: np.pad(x, ((1, 2), (0, 1)), constant_values=0.5)[:4]
         + np.pad(x, 1, constant_values=((1, 2), (3, 4)))[:4, :4], args(_n(2, 3))),
    Case("pad_edge_wrap", lambda x: np.pad(x, ((2, 1), (1, 3)), mode="edge")[:, :7] * np.pad(x, (2, 1), mode="wrap"),
         args(_n(3, 4))),
    Case("pad_reflect_symmetric", lambda x: np.pad(x, ((0, 0), (2, 3)), mode="reflect")[:, 1:-1]
         - np.pad(x, ((0, 0), (3, 2)), mode="symmetric")[:, 1:-1] ** 2, args(_n(2, 5))),
    Case("pad_conv_input", lambda x: np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)), "constant"), args(_n(2, 1, 3, 3))),
    Case("splits", _splits, args(_n(3, 4))),
    Case("sliding_window_1d", lambda x: np.lib.stride_tricks.sliding_window_view(x, 3) * 2.0, args(_n(6))),
    Case("sliding_window_2d", lambda x: np.lib.stride_tricks.sliding_window_view(x, (2, 3), axis=(1, 2)).sum(-1),
         args(_n(2, 4, 5))),
]
# fmt: on
