"""Stride-1 convolution for the Numba backend: one serial ``@njit`` kernel per op, sample by
sample in cache, with its own register-blocked GEMM instead of BLAS.

With stride 1, the output computed over the padded width ``Wp`` (``OW`` valid columns and
``Wp - OW`` extra ones, cropped afterwards) reads, for kernel position (c, i, j), the
contiguous run ``xpad[c].ravel()[i*dh*Wp + j*dw :][:OH*Wp]``. So the column matrix is never
packed: the GEMM reads its rows straight from the sample's zero-padded planes (padding is
the only copy, fused into the kernel), and the crop writes the result (for a reader that
indexes only the valid region, the wide rows are the result: ``conv2d(..., wide=True)``). The
price is ``Wp / OW`` more GEMM columns (16/14 for a 14-wide map padded by 1).

BLAS is not used because OpenBLAS threads these per-sample GEMMs (16x72x224) on its own
pool: on this shared 2-core machine that was 3-5x slower than one thread under load, and the
process-wide thread setting is not ours to change. The input gradient of a stride-1
convolution is itself a stride-1 convolution of ``dy`` (kernel flipped, in/out channels
swapped per group, padding ``d*(k-1) - p``); the weight gradient is dot products of the widened
``dy`` rows with the same plane runs. Scratch is allocated per call: concurrent calls are safe."""

from __future__ import annotations

import numpy as np
from numba import njit

from . import library_kernels

# the weight gradient's dot products vectorise only when their sums may be reassociated
_REASSOC = {"reassoc", "contract"}
# multiply-adds fused into FMA instructions (one rounding instead of two): half the vector ops
_CONTRACT = {"contract"}


def applies(stride, padding, dilation, kernel_hw) -> bool:
    """Whether these kernels compute this convolution: stride 1 (and the input gradient's
    padding ``d*(k-1) - p`` non-negative, so it is a convolution too)."""
    return tuple(stride) == (1, 1) and all(d * (k - 1) >= p for p, d, k in zip(padding, dilation, kernel_hw))


@njit(inline="always")
def _offsets(nc, kh, kw, dh, dw, wp, plane):  # pragma: no cover - compiled
    """Start of each column row (c, i, j) in the flattened padded planes."""
    offs = np.empty(nc * kh * kw, np.int64)
    for c in range(nc):
        for i in range(kh):
            for j in range(kw):
                offs[(c * kh + i) * kw + j] = c * plane + i * dh * wp + j * dw
    return offs


@njit(inline="always")
def _pad_sample(xf, n, planes, nc, h, w, ph, pw, wp, plane):  # pragma: no cover - compiled
    """Copy sample n of the flattened x into the interiors of the zero-bordered planes."""
    for c in range(nc):
        _copy_rows(xf, (n * nc + c) * h * w, w, planes, c * plane + ph * wp + pw, wp, h, w)


@njit(inline="always")
def _copy_rows(src, s, s_step, dst, d, d_step, rows, width):  # pragma: no cover - compiled
    """dst[d + r*d_step :][:width] = src[s + r*s_step :][:width] for r < rows, on flat arrays.
    The indices are unsigned, so Numba emits no negative-index wraparound and each row copy
    vectorises: half the time of copying between row views, which the cropping of a 28-wide
    output spent 15 ns a row on (more than the 1->8 convolution's GEMM took)."""
    s, s_step, d, d_step = np.uint64(s), np.uint64(s_step), np.uint64(d), np.uint64(d_step)
    width = np.uint64(width)
    for _ in range(rows):
        for v in range(width):
            dst[d + v] = src[s + v]
        s += s_step
        d += d_step


@njit(inline="always")
def _aligned(n, dtype):  # pragma: no cover - compiled
    """np.empty(n, dtype) starting on a 64-byte line: the GEMM loads and stores its output rows
    every pass, and 32-byte vectors that straddle lines made the forward 15-20% slower (the
    allocator's 16-byte alignment decided it anew in each process)."""
    raw = np.empty(n + 16, dtype)  # 16 elements: 64 bytes of float32, more of float64
    start = ((-raw.ctypes.data) % 64) // raw.itemsize
    return raw[start : start + n]


@njit(inline="always")
def _gemm_rows(a, planes, offs, r0, wide, o0, n_out, run):  # pragma: no cover - compiled
    """wide[o0 + o, :run] += sum over k of a[o, k] * planes[offs[r0 + k]:][:run]; four output
    rows by three column rows at a time (12 FMAs per 7 loads; the 12 weights, 3 inputs and a
    sum fill the 16 vector registers, where four by four spilled weights to the stack). Three
    also divides a 3x3 kernel's 9 rows per channel, which left one row over at four."""
    k_all = a.shape[1]
    m4, k3 = n_out - n_out % 4, k_all - k_all % 3
    for i in range(0, m4, 4):
        c0, c1, c2, c3 = wide[o0 + i], wide[o0 + i + 1], wide[o0 + i + 2], wide[o0 + i + 3]
        for p in range(0, k3, 3):
            s0, s1, s2 = offs[r0 + p], offs[r0 + p + 1], offs[r0 + p + 2]
            b0, b1, b2 = planes[s0 : s0 + run], planes[s1 : s1 + run], planes[s2 : s2 + run]
            a00, a01, a02 = a[i, p], a[i, p + 1], a[i, p + 2]
            a10, a11, a12 = a[i + 1, p], a[i + 1, p + 1], a[i + 1, p + 2]
            a20, a21, a22 = a[i + 2, p], a[i + 2, p + 1], a[i + 2, p + 2]
            a30, a31, a32 = a[i + 3, p], a[i + 3, p + 1], a[i + 3, p + 2]
            for q in range(run):
                x0, x1, x2 = b0[q], b1[q], b2[q]
                c0[q] += a00 * x0 + a01 * x1 + a02 * x2
                c1[q] += a10 * x0 + a11 * x1 + a12 * x2
                c2[q] += a20 * x0 + a21 * x1 + a22 * x2
                c3[q] += a30 * x0 + a31 * x1 + a32 * x2
        for p in range(k3, k_all):
            s = offs[r0 + p]
            b = planes[s : s + run]
            e0, e1, e2, e3 = a[i, p], a[i + 1, p], a[i + 2, p], a[i + 3, p]
            for q in range(run):
                x = b[q]
                c0[q] += e0 * x
                c1[q] += e1 * x
                c2[q] += e2 * x
                c3[q] += e3 * x
    for i in range(m4, n_out):
        ci = wide[o0 + i]
        for p in range(k_all):
            s = offs[r0 + p]
            b = planes[s : s + run]
            e = a[i, p]
            for q in range(run):
                ci[q] += e * b[q]


@njit(fastmath=_CONTRACT)
def _conv_forward(x, wg, out, kh, kw, ph, pw, dh, dw):  # pragma: no cover - compiled
    """out = conv(x, w) at stride 1, wg being w as (groups, O/groups, Cg*KH*KW). An ``out``
    as wide as the padded input (``conv2d_wide``) takes the GEMM's rows as they are, extra
    columns included; otherwise the valid columns are cropped into it."""
    nb, nc, h, w = x.shape
    groups, og, rows = wg.shape
    oh, ow = out.shape[2:]
    wp = w + 2 * pw
    plane = (h + 2 * ph) * wp + dw * (kw - 1)  # the last run reads past the bottom border
    run = oh * wp
    planes = np.zeros(nc * plane, x.dtype)
    offs = _offsets(nc, kh, kw, dh, dw, wp, plane)
    keep_wide = ow == wp
    scratch = _aligned(0 if keep_wide else og * groups * run, x.dtype).reshape(-1, run)
    xf, sf, of = x.reshape(-1), scratch.reshape(-1), out.reshape(-1)
    for n in range(nb):
        _pad_sample(xf, n, planes, nc, h, w, ph, pw, wp, plane)
        wide = out[n].reshape(og * groups, run) if keep_wide else scratch
        wide[:] = 0
        for g in range(groups):
            _gemm_rows(wg[g], planes, offs, g * rows, wide, g * og, og, run)
        if not keep_wide:
            for o in range(og * groups):  # crop the valid columns into out[n, o]
                _copy_rows(sf, o * run, wp, of, (n * og * groups + o) * oh * ow, ow, oh, ow)


@njit(inline="always", fastmath=_REASSOC)
def _weight_grad_dots(wide, planes, offs, acc, g, og, rows, run, zero):  # pragma: no cover - compiled
    """acc[g, o, r] += dot(wide[g*Og + o], planes run r) for group g: four output channels by
    three column rows per pass (12 vector accumulators, 7 loads per 12 FMAs; 1.2-1.45x the 2x1
    blocking here), then the channels and rows left over one by one."""
    o0, r0 = g * og, g * rows
    o4, r3 = og - og % 4, rows - rows % 3
    for r in range(0, r3, 3):
        s0, s1, s2 = offs[r0 + r], offs[r0 + r + 1], offs[r0 + r + 2]
        b0, b1, b2 = planes[s0 : s0 + run], planes[s1 : s1 + run], planes[s2 : s2 + run]
        for o in range(0, o4, 4):
            w0, w1, w2, w3 = wide[o0 + o], wide[o0 + o + 1], wide[o0 + o + 2], wide[o0 + o + 3]
            t00 = t01 = t02 = t10 = t11 = t12 = t20 = t21 = t22 = t30 = t31 = t32 = zero
            for q in range(run):  # zero of dy's dtype: a float64 sum would not vectorise
                x0, x1, x2 = b0[q], b1[q], b2[q]
                y0, y1, y2, y3 = w0[q], w1[q], w2[q], w3[q]
                t00, t01, t02 = t00 + y0 * x0, t01 + y0 * x1, t02 + y0 * x2
                t10, t11, t12 = t10 + y1 * x0, t11 + y1 * x1, t12 + y1 * x2
                t20, t21, t22 = t20 + y2 * x0, t21 + y2 * x1, t22 + y2 * x2
                t30, t31, t32 = t30 + y3 * x0, t31 + y3 * x1, t32 + y3 * x2
            for i, (u0, u1, u2) in enumerate(
                ((t00, t01, t02), (t10, t11, t12), (t20, t21, t22), (t30, t31, t32))
            ):
                acc[g, o + i, r] += u0
                acc[g, o + i, r + 1] += u1
                acc[g, o + i, r + 2] += u2
        for o in range(o4, og):
            for j, b in enumerate((b0, b1, b2)):
                acc[g, o, r + j] += _dot(wide[o0 + o], b, run, zero)
    for r in range(r3, rows):
        s = offs[r0 + r]
        for o in range(og):
            acc[g, o, r] += _dot(wide[o0 + o], planes[s : s + run], run, zero)


@njit(inline="always", fastmath=_REASSOC)
def _dot(a, b, run, zero):  # pragma: no cover - compiled
    t = zero
    for q in range(run):
        t += a[q] * b[q]
    return t


@njit(fastmath=_REASSOC)
def _conv_weight_grad(x, dy, dwg, kh, kw, ph, pw, dh, dw, zero):  # pragma: no cover - compiled
    """dwg[g, o, r] = sum over n, y, v of dy[n, g*Og + o, y, v] * xpad[n] run r at (y, v)."""
    nb, nc, h, w = x.shape
    groups, og, rows = dwg.shape
    oh, ow = dy.shape[2:]
    wp = w + 2 * pw
    plane = (h + 2 * ph) * wp + dw * (kw - 1)
    run = oh * wp
    planes = np.zeros(nc * plane, x.dtype)
    offs = _offsets(nc, kh, kw, dh, dw, wp, plane)
    wide = np.zeros((og * groups, run), dy.dtype)  # dy[n] widened: zero past the valid width
    acc = np.zeros(dwg.shape, np.float64)
    xf, dyf, wf = x.reshape(-1), dy.reshape(-1), wide.reshape(-1)
    for n in range(nb):
        _pad_sample(xf, n, planes, nc, h, w, ph, pw, wp, plane)
        for o in range(og * groups):
            _copy_rows(dyf, (n * og * groups + o) * oh * ow, ow, wf, o * run, wp, oh, ow)
        for g in range(groups):
            _weight_grad_dots(wide, planes, offs, acc, g, og, rows, run, zero)
    for g in range(groups):
        for o in range(og):
            for r in range(rows):
                dwg[g, o, r] = acc[g, o, r]


def aligned_empty(shape: tuple, dtype) -> np.ndarray:
    """np.empty on a 64-byte line (``_aligned``: a wide result's rows are the GEMM's output)."""
    dtype = np.dtype(dtype)
    n = int(np.prod(shape))
    raw = np.empty(n * dtype.itemsize + 64, np.uint8)
    start = -raw.ctypes.data % 64
    return raw[start : start + n * dtype.itemsize].view(dtype).reshape(shape)


def _out_hw(hw, khw, padding, dilation) -> tuple[int, int]:
    return tuple(d + 2 * p - dl * (k - 1) for d, k, p, dl in zip(hw, khw, padding, dilation))


def conv2d(x, w, padding, dilation, groups, wide: bool = False) -> np.ndarray:
    """Stride-1 NCHW x OIHW -> NCHW. ``wide``: the result as (N, O, OH, W + 2*pw), whose first
    OW columns are the convolution and the rest are left over from the GEMM's runs (for a
    reader that indexes only the valid region: the crop is then its pass, not a copy here)."""
    o, cg, kh, kw = w.shape
    oh, ow = _out_hw(x.shape[2:], (kh, kw), padding, dilation)
    out = aligned_empty((x.shape[0], o, oh, x.shape[3] + 2 * padding[1] if wide else ow), x.dtype)
    wg = np.ascontiguousarray(w).reshape(groups, o // groups, cg * kh * kw)
    library_kernels.call(_conv_forward, np.ascontiguousarray(x), wg, out, kh, kw, *padding, *dilation)
    return out


def conv2d_input_grad(dy, w, padding, dilation, groups) -> np.ndarray:
    """dx = the stride-1 convolution of dy with the flipped kernel, channels swapped per group."""
    o, cg, kh, kw = w.shape
    og = o // groups
    flipped = w[:, :, ::-1, ::-1].reshape(groups, og, cg, kh, kw).transpose(0, 2, 1, 3, 4)
    flipped = np.ascontiguousarray(flipped).reshape(groups * cg, og, kh, kw)
    full = tuple(d * (k - 1) - p for p, d, k in zip(padding, dilation, (kh, kw)))
    return conv2d(dy, flipped, full, dilation, groups)


def conv2d_weight_grad(x, dy, padding, dilation, groups, kernel_hw) -> np.ndarray:
    """dW (O, C/groups, KH, KW), sums over the batch in float64."""
    n, c = x.shape[:2]
    o = dy.shape[1]
    dwg = np.empty((groups, o // groups, c // groups * kernel_hw[0] * kernel_hw[1]), dy.dtype)
    library_kernels.call(
        _conv_weight_grad,
        np.ascontiguousarray(x),
        np.ascontiguousarray(dy),
        dwg,
        *kernel_hw,
        *padding,
        *dilation,
        dy.dtype.type(0),
    )
    return dwg.reshape(o, c // groups, *kernel_hw)
