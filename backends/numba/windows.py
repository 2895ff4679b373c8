"""Convolution and pooling for the Numba backend (called from the generated driver as ``nw``).

Stride-1 convolutions and their gradients (the common case) run ``backends.numba.conv``'s
serial kernels (shifted runs of padded planes, no packing, no BLAS). Other strides use a packed
im2col: one ``@njit`` kernel writes the column matrix with the padding fused into the packing,
then BLAS (``np.matmul``) does one GEMM per group and sample straight into the NCHW result; the
weight gradient is a GEMM per group and sample summed over the batch, the input gradient a GEMM
followed by a col2im kernel. Pooling and its gradients are direct loop kernels, with tile
versions (``backends.numba.pool_tiles``) when kernel == stride and there is no padding.

Every buffer is allocated per call (no module-level scratch), so concurrent calls are safe.
The loop kernels are serial: on this shared 2-core machine ``prange`` versions spent ~20 ms per
call in the threading layer's barrier under load, against 1-4 ms for the serial loops.
Dtypes Numba does not loop over here (anything but float32/float64) use the NumPy kernels.
The functions take the same arguments as ``bpir.backends.numpy.kernels``'s."""

from __future__ import annotations

import numpy as np
from numba import njit

from ..numpy import kernels as numpy_kernels
from ..numpy.backend import EXPRESSIONS as NUMPY_EXPRESSIONS
from . import conv as shifted
from . import library_kernels, pool_tiles

OPS = frozenset(
    {"conv2d", "conv2d_input_grad", "conv2d_weight_grad", "max_pool2d", "max_pool2d_grad", "avg_pool2d",
     "avg_pool2d_grad"}
)  # fmt: skip
_NATIVE = (np.dtype("float32"), np.dtype("float64"))


def expression(node, args: list[str]) -> str:
    """The driver's call for a windowed op: the NumPy backend's kernel call, made on ``nw``."""
    return "nw." + NUMPY_EXPRESSIONS[node.op](node, args).removeprefix("k.")


def _native(*arrays) -> bool:
    return all(a.dtype in _NATIVE for a in arrays) and len({a.dtype for a in arrays}) == 1


@njit(inline="always")
def _valid(n_out, size, stride, offset):
    """Output positions o in [lo, hi) whose input position o*stride + offset lies in [0, size)."""
    lo = max(0, (stride - 1 - offset) // stride)
    hi = min(n_out, (size - 1 - offset) // stride + 1)
    return lo, max(lo, hi)


@njit
def _im2col(x, cols, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, zero):  # pragma: no cover - compiled
    """cols[n, (c*kh + i)*kw + j, y*ow + v] = x[n, c, y*sh - ph + i*dh, v*sw - pw + j*dw], 0 outside."""
    nb, nc, h, w = x.shape
    for t in range(nb * nc):
        n, c = t // nc, t % nc
        for i in range(kh):
            y0, y1 = _valid(oh, h, sh, i * dh - ph)
            for j in range(kw):
                r = (c * kh + i) * kw + j
                v0, v1 = _valid(ow, w, sw, j * dw - pw)
                for y in range(oh):
                    base = y * ow
                    if y < y0 or y >= y1:
                        for v in range(ow):
                            cols[n, r, base + v] = zero
                        continue
                    iy = y * sh - ph + i * dh
                    for v in range(v0):
                        cols[n, r, base + v] = zero
                    if sw == 1:  # unit stride: a loop LLVM vectorises
                        for v in range(v0, v1):
                            cols[n, r, base + v] = x[n, c, iy, v - pw + j * dw]
                    else:
                        for v in range(v0, v1):
                            cols[n, r, base + v] = x[n, c, iy, v * sw - pw + j * dw]
                    for v in range(v1, ow):
                        cols[n, r, base + v] = zero


@njit
def _col2im(cols, dx, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow):  # pragma: no cover - compiled
    """dx[n, c] = sum over kernel positions of the column rows added back where they were read."""
    nb, nc, h, w = dx.shape
    for t in range(nb * nc):
        n, c = t // nc, t % nc
        dx[n, c] = 0
        for i in range(kh):
            y0, y1 = _valid(oh, h, sh, i * dh - ph)
            for j in range(kw):
                r = (c * kh + i) * kw + j
                v0, v1 = _valid(ow, w, sw, j * dw - pw)
                for y in range(y0, y1):
                    iy = y * sh - ph + i * dh
                    for v in range(v0, v1):
                        dx[n, c, iy, v * sw - pw + j * dw] += cols[n, r, y * ow + v]


def _out_hw(hw, khw, stride, padding, dilation) -> tuple[int, int]:
    return tuple(
        (d + 2 * p - dl * (k - 1) - 1) // s + 1 for d, k, s, p, dl in zip(hw, khw, stride, padding, dilation)
    )


def _columns(x, khw, stride, padding, dilation, out_hw) -> np.ndarray:
    """im2col of x: (N, C*KH*KW, OH*OW)."""
    n, c = x.shape[:2]
    rows, p = c * khw[0] * khw[1], out_hw[0] * out_hw[1]
    if khw == (1, 1) and stride == (1, 1) and padding == (0, 0):
        return np.reshape(x, (n, c, p))
    x = np.ascontiguousarray(x)
    cols = np.empty((n, rows, p), x.dtype)
    library_kernels.call(_im2col, x, cols, *khw, *stride, *padding, *dilation, *out_hw, x.dtype.type(0))
    return cols


def conv2d(x, w, stride, padding, dilation, groups):
    """NCHW x OIHW -> NCHW: im2col, then per sample and group one GEMM into the result."""
    if not _native(x, w):
        return numpy_kernels.conv2d(x, w, stride, padding, dilation, groups)
    if shifted.applies(stride, padding, dilation, w.shape[2:]):
        return shifted.conv2d(x, w, padding, dilation, groups)
    n, o, cg, khw = x.shape[0], w.shape[0], w.shape[1], tuple(w.shape[2:])
    oh, ow = _out_hw(x.shape[2:], khw, stride, padding, dilation)
    cols = _columns(x, khw, stride, padding, dilation, (oh, ow))
    out = np.empty((n, o, oh, ow), x.dtype)
    rows = cg * khw[0] * khw[1]
    wg = np.reshape(w, (groups, o // groups, rows))
    np.matmul(wg, cols.reshape(n, groups, rows, oh * ow), out=out.reshape(n, groups, o // groups, oh * ow))
    return out


def conv2d_wide(x, w, stride, padding, dilation, groups):
    """``conv2d`` for a reader that indexes only its (N, O, OH, OW) region: a stride-1 result
    may come back wider (``conv.conv2d``'s ``wide``), sparing the crop."""
    if _native(x, w) and shifted.applies(stride, padding, dilation, w.shape[2:]):
        return shifted.conv2d(x, w, padding, dilation, groups, wide=True)
    return conv2d(x, w, stride, padding, dilation, groups)


def wide_expression(node, args: list[str]) -> str:
    """The driver's call of ``conv2d_wide`` for a conv2d node."""
    return "nw.conv2d_wide" + expression(node, args).removeprefix("nw.conv2d")


def conv2d_weight_grad(x, dy, stride, padding, dilation, groups, kernel_hw):
    """dW[g] = sum over samples of dy[n, g] (Og, P) @ cols[n, g]^T (P, Cg*K): batched small GEMMs.

    One long GEMM over the whole batch (K = N*P, M and N tiny) is what OpenBLAS threads worst:
    on this loaded 2-core machine it took 0.5-1 s per call against ~1 ms for the batch of small
    single-threaded ones."""
    if not _native(x, dy):
        return numpy_kernels.conv2d_weight_grad(x, dy, stride, padding, dilation, groups, kernel_hw)
    if shifted.applies(stride, padding, dilation, kernel_hw):
        return shifted.conv2d_weight_grad(x, dy, padding, dilation, groups, kernel_hw)
    n, c = x.shape[:2]
    o, oh, ow = dy.shape[1:]
    khw = tuple(kernel_hw)
    cols = _columns(x, khw, stride, padding, dilation, (oh, ow))
    rows = c // groups * khw[0] * khw[1]
    dyg = np.reshape(dy, (n, groups, o // groups, oh * ow))
    per_sample = np.matmul(dyg, cols.reshape(n, groups, rows, oh * ow).transpose(0, 1, 3, 2))
    return per_sample.sum(axis=0).reshape(o, c // groups, *khw)


def conv2d_input_grad(dy, w, stride, padding, dilation, groups, input_hw):
    """Column gradients W[g]^T @ dy[n, g] (one GEMM per sample and group), then col2im."""
    if not _native(dy, w):
        return numpy_kernels.conv2d_input_grad(dy, w, stride, padding, dilation, groups, input_hw)
    if shifted.applies(stride, padding, dilation, w.shape[2:]):
        return shifted.conv2d_input_grad(dy, w, padding, dilation, groups)
    n, o, oh, ow = dy.shape
    cg, khw = w.shape[1], tuple(w.shape[2:])
    rows = cg * khw[0] * khw[1]
    wt = np.reshape(w, (groups, o // groups, rows)).transpose(0, 2, 1)
    cols = np.matmul(wt, np.reshape(dy, (n, groups, o // groups, oh * ow)))  # n, g, rows, P
    dx = np.empty((n, cg * groups, *input_hw), dy.dtype)
    library_kernels.call(
        _col2im, cols.reshape(n, groups * rows, oh * ow), dx, *khw, *stride, *padding, *dilation, oh, ow
    )
    return dx


@njit
def _max_pool(x, out, kh, kw, sh, sw, ph, pw):  # pragma: no cover - compiled
    nb, nc, h, w = x.shape
    oh, ow = out.shape[2:]
    for t in range(nb * nc):
        n, c = t // nc, t % nc
        for y in range(oh):
            for v in range(ow):
                best = -np.inf
                for i in range(kh):
                    iy = y * sh - ph + i
                    if 0 <= iy < h:
                        for j in range(kw):
                            ix = v * sw - pw + j
                            if 0 <= ix < w:
                                e = x[n, c, iy, ix]
                                if e > best or e != e:  # NaN propagates like np.max
                                    best = e
                out[n, c, y, v] = best


@njit
def _max_pool_grad(x, dy, dx, kh, kw, sh, sw, ph, pw):  # pragma: no cover - compiled
    """Each window's cotangent goes to its first maximal element in row-major order, padding
    (-inf) included as NumPy's argmax over the padded window sees it."""
    nb, nc, h, w = x.shape
    oh, ow = dy.shape[2:]
    for t in range(nb * nc):
        n, c = t // nc, t % nc
        dx[n, c] = 0
        for y in range(oh):
            for v in range(ow):
                y0, x0 = y * sh - ph, v * sw - pw
                if y0 >= 0 and x0 >= 0 and y0 + kh <= h and x0 + kw <= w:  # window inside x
                    best, by, bx = x[n, c, y0, x0], y0, x0
                    for i in range(kh):
                        for j in range(kw):
                            e = x[n, c, y0 + i, x0 + j]
                            if e > best or (e != e and best == best):
                                best, by, bx = e, y0 + i, x0 + j
                    dx[n, c, by, bx] += dy[n, c, y, v]
                    continue
                best, by, bx, found = -np.inf, -1, -1, False
                for i in range(kh):
                    iy = y * sh - ph + i
                    for j in range(kw):
                        ix = v * sw - pw + j
                        inside = 0 <= iy < h and 0 <= ix < w
                        e = x[n, c, iy, ix] if inside else -np.inf
                        if not found or e > best or (e != e and best == best):
                            best, found = e, True
                            by, bx = (iy, ix) if inside else (-1, -1)
                if by >= 0:
                    dx[n, c, by, bx] += dy[n, c, y, v]


@njit
def _avg_pool(x, out, kh, kw, sh, sw, ph, pw, area):  # pragma: no cover - compiled
    nb, nc, h, w = x.shape
    oh, ow = out.shape[2:]
    for t in range(nb * nc):
        n, c = t // nc, t % nc
        for y in range(oh):
            for v in range(ow):
                total = area * 0
                for i in range(kh):
                    iy = y * sh - ph + i
                    if 0 <= iy < h:
                        for j in range(kw):
                            ix = v * sw - pw + j
                            if 0 <= ix < w:
                                total += x[n, c, iy, ix]
                out[n, c, y, v] = total / area


@njit
def _avg_pool_grad(dy, dx, kh, kw, sh, sw, ph, pw, area):  # pragma: no cover - compiled
    nb, nc, h, w = dx.shape
    oh, ow = dy.shape[2:]
    for t in range(nb * nc):
        n, c = t // nc, t % nc
        dx[n, c] = 0
        for y in range(oh):
            for v in range(ow):
                share = dy[n, c, y, v] / area
                for i in range(kh):
                    iy = y * sh - ph + i
                    if 0 <= iy < h:
                        for j in range(kw):
                            ix = v * sw - pw + j
                            if 0 <= ix < w:
                                dx[n, c, iy, ix] += share


def _pool_out(x_hw, kernel, stride, padding) -> tuple[int, int]:
    return _out_hw(x_hw, kernel, stride, padding, (1, 1))


def max_pool2d(x, kernel, stride, padding):
    if not _native(x):
        return numpy_kernels.max_pool2d(x, kernel, stride, padding)
    out = np.empty((*x.shape[:2], *_pool_out(x.shape[2:], kernel, stride, padding)), x.dtype)
    x = np.ascontiguousarray(x)
    if not pool_tiles.applies(kernel, stride, padding):
        library_kernels.call(_max_pool, x, out, *kernel, *stride, *padding)
    elif tuple(kernel) == (2, 2):
        library_kernels.call(pool_tiles.max_pool_2x2, x, out)
    else:
        library_kernels.call(pool_tiles.max_pool, x, out, *kernel)
    return out


def max_pool2d_grad(x, dy, kernel, stride, padding):
    if not _native(x, dy):
        return numpy_kernels.max_pool2d_grad(x, dy, kernel, stride, padding)
    x, dy = np.ascontiguousarray(x), np.ascontiguousarray(dy)
    if pool_tiles.applies(kernel, stride, padding) and tuple(kernel) == (2, 2):
        dx = np.zeros(x.shape, dy.dtype)
        library_kernels.call(pool_tiles.max_pool_grad_2x2, x, dy, dx)
    else:
        dx = np.empty(x.shape, dy.dtype)
        library_kernels.call(_max_pool_grad, x, dy, dx, *kernel, *stride, *padding)
    return dx


def avg_pool2d(x, kernel, stride, padding):
    if not _native(x):
        return numpy_kernels.avg_pool2d(x, kernel, stride, padding)
    out = np.empty((*x.shape[:2], *_pool_out(x.shape[2:], kernel, stride, padding)), x.dtype)
    library_kernels.call(
        _avg_pool,
        np.ascontiguousarray(x),
        out,
        *kernel,
        *stride,
        *padding,
        x.dtype.type(kernel[0] * kernel[1]),
    )
    return out


def avg_pool2d_grad(dy, kernel, stride, padding, input_hw):
    if not _native(dy):
        return numpy_kernels.avg_pool2d_grad(dy, kernel, stride, padding, input_hw)
    dx = np.empty((*dy.shape[:2], *input_hw), dy.dtype)
    area = dy.dtype.type(kernel[0] * kernel[1])
    library_kernels.call(_avg_pool_grad, np.ascontiguousarray(dy), dx, *kernel, *stride, *padding, area)
    return dx
