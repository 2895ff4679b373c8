"""Plain-NumPy kernels for the ops NumPy has no single call for (convolution, pooling, padding
with interior, scatter-add, one_hot, threefry random bits): the ops' reference implementations
(``OpDef.impl``) use them, and the NumPy backend's generated source calls them as ``k``."""

from __future__ import annotations

import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .. import random_ref

_erf = np.vectorize(math.erf, otypes=[np.float64])


def sigmoid(x, out=None):
    # 1/(1+exp(-x)) overflows harmlessly for very negative x (exp -> inf, result 0)
    with np.errstate(over="ignore"):
        r = np.reciprocal(np.add(np.exp(np.negative(x)), x.dtype.type(1)), out=out)
    return r


def rsqrt(x, out=None):
    return np.reciprocal(np.sqrt(x, out=out), out=out)


def erf(x, out=None):
    r = _erf(x).astype(x.dtype)
    if out is not None:
        out[...] = r
        return out
    return r


def pad(x, lo, hi, interior, value):
    shape = tuple(a + z + d + max(d - 1, 0) * i for d, a, z, i in zip(x.shape, lo, hi, interior))
    out = np.full(shape, value, dtype=x.dtype)
    out[tuple(slice(a, a + (d - 1) * (i + 1) + 1, i + 1) for a, d, i in zip(lo, x.shape, interior))] = x
    return out


def _windows(xp, khw, stride, dilation):
    """(N, C, OH, OW, KH, KW) strided view of the padded input."""
    (kh, kw), (sh, sw), (dh, dw) = khw, stride, dilation
    win = sliding_window_view(xp, ((kh - 1) * dh + 1, (kw - 1) * dw + 1), axis=(2, 3))
    return win[:, :, ::sh, ::sw, ::dh, ::dw]


def _pad_hw(x, padding, value=0.0):
    ph, pw = padding
    if ph == pw == 0:
        return x
    return np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=value)


def conv2d(x, w, stride, padding, dilation, groups):
    n, c = x.shape[:2]
    o, cg, kh, kw = w.shape
    win = _windows(_pad_hw(x, padding), (kh, kw), stride, dilation)
    oh, ow = win.shape[2:4]
    win = win.reshape(n, groups, cg, oh, ow, kh, kw)
    wg = w.reshape(groups, o // groups, cg, kh, kw)
    out = np.einsum("ngchwkl,gockl->ngohw", win, wg, optimize=True)
    return np.ascontiguousarray(out.reshape(n, o, oh, ow), dtype=x.dtype)


def _scatter_windows(cols, hw, stride, padding, dilation, dtype):
    """Add (N, C, OH, OW, KH, KW) window values back to their (N, C, H, W) input positions."""
    n, c, oh, ow, kh, kw = cols.shape
    (ph, pw), (sh, sw), (dh, dw) = padding, stride, dilation
    xp = np.zeros((n, c, hw[0] + 2 * ph, hw[1] + 2 * pw), dtype=dtype)
    for i in range(kh):
        for j in range(kw):
            xp[:, :, i * dh : i * dh + (oh - 1) * sh + 1 : sh,
               j * dw : j * dw + (ow - 1) * sw + 1 : sw] += cols[:, :, :, :, i, j]  # fmt: skip
    return xp[:, :, ph : ph + hw[0], pw : pw + hw[1]]


def conv2d_input_grad(dy, w, stride, padding, dilation, groups, input_hw):
    n, o, oh, ow = dy.shape
    _, cg, kh, kw = w.shape
    dyg = dy.reshape(n, groups, o // groups, oh, ow)
    wg = w.reshape(groups, o // groups, cg, kh, kw)
    cols = np.einsum("ngohw,gockl->ngchwkl", dyg, wg, optimize=True)
    cols = cols.reshape(n, groups * cg, oh, ow, kh, kw)
    return np.ascontiguousarray(_scatter_windows(cols, input_hw, stride, padding, dilation, dy.dtype))


def conv2d_weight_grad(x, dy, stride, padding, dilation, groups, kernel_hw):
    n, c = x.shape[:2]
    o, oh, ow = dy.shape[1:]
    kh, kw = kernel_hw
    win = _windows(_pad_hw(x, padding), (kh, kw), stride, dilation)
    win = win.reshape(n, groups, c // groups, oh, ow, kh, kw)
    dyg = dy.reshape(n, groups, o // groups, oh, ow)
    dw = np.einsum("ngchwkl,ngohw->gockl", win, dyg, optimize=True)
    return np.ascontiguousarray(dw.reshape(o, c // groups, kh, kw), dtype=x.dtype)


def max_pool2d(x, kernel, stride, padding):
    win = _windows(_pad_hw(x, padding, -np.inf), kernel, stride, (1, 1))
    return np.ascontiguousarray(win.max(axis=(4, 5)))


def max_pool2d_grad(x, dy, kernel, stride, padding):
    """Each window's cotangent goes to its first maximal element (row-major order)."""
    win = _windows(_pad_hw(x, padding, -np.inf), kernel, stride, (1, 1))
    n, c, oh, ow, kh, kw = win.shape
    first = win.reshape(n, c, oh, ow, kh * kw).argmax(axis=4)
    cols = (first[..., None] == np.arange(kh * kw)) * dy[..., None]
    cols = cols.reshape(n, c, oh, ow, kh, kw).astype(dy.dtype)
    return np.ascontiguousarray(_scatter_windows(cols, x.shape[2:], stride, padding, (1, 1), dy.dtype))


def avg_pool2d(x, kernel, stride, padding):
    win = _windows(_pad_hw(x, padding), kernel, stride, (1, 1))
    return np.ascontiguousarray(win.sum(axis=(4, 5)) / (kernel[0] * kernel[1]), dtype=x.dtype)


def avg_pool2d_grad(dy, kernel, stride, padding, input_hw):
    kh, kw = kernel
    share = (dy / (kh * kw)).astype(dy.dtype)
    cols = np.broadcast_to(share[..., None, None], (*dy.shape, kh, kw))
    return np.ascontiguousarray(_scatter_windows(cols, input_hw, stride, padding, (1, 1), dy.dtype))


def scatter_add_along_axis(idx, upd, axis, dim):
    shape = list(idx.shape)
    shape[axis] = dim
    out = np.zeros(shape, dtype=upd.dtype)
    grid = list(np.indices(idx.shape, sparse=True))
    grid[axis] = idx
    np.add.at(out, tuple(grid), upd)
    return out


def one_hot(labels, num_classes, dtype):
    return (labels[..., None] == np.arange(num_classes)).astype(dtype)


def iota(shape, axis, dtype):
    ar = np.arange(shape[axis], dtype=dtype).reshape([-1 if i == axis else 1 for i in range(len(shape))])
    return np.ascontiguousarray(np.broadcast_to(ar, shape))


def random_uniform(key, shape, dtype):
    """Floats in [0, 1) from threefry-2x32 bits (bpir.random_ref, JAX's bits)."""
    return random_ref.bits_to_unit(random_ref.random_bits(key, shape, np.dtype(dtype).itemsize * 8), dtype)


def random_split(key, num):
    return random_ref.split(key, num)
