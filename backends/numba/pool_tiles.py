"""Max pooling over tiles (kernel == stride, no padding: the CNN's 2x2 pool) for the Numba
backend: every window lies inside the input, so the loop needs no bounds tests (1.3-1.5x the
general kernel here); 2x2 tiles, the common case, have their own forward and gradient."""

from __future__ import annotations

import numpy as np
from numba import njit


def applies(kernel, stride, padding) -> bool:
    return tuple(kernel) == tuple(stride) and tuple(padding) == (0, 0)


@njit
def max_pool(x, out, kh, kw):  # pragma: no cover - compiled
    """out[n, c, y, v] = max of the tile x[n, c, y*kh:(y+1)*kh, v*kw:(v+1)*kw] (NaN wins)."""
    nb, nc, oh, ow = out.shape
    for n in range(nb):
        for c in range(nc):
            for y in range(oh):
                for v in range(ow):
                    best = x[n, c, y * kh, v * kw]
                    for i in range(kh):
                        for j in range(kw):
                            e = x[n, c, y * kh + i, v * kw + j]
                            if e > best or e != e:
                                best = e
                    out[n, c, y, v] = best


@njit(inline="always")
def _beats(a, b):  # pragma: no cover - compiled
    """a, later in the tile than b, takes its place: larger, or the first NaN."""
    return (a > b) | ((a != a) & (b == b))


@njit(inline="always")
def _holds(a, b):  # pragma: no cover - compiled
    """a, earlier in the tile than b, keeps its place: not smaller, or a NaN."""
    return (a >= b) | (a != a)


@njit(inline="always")
def _first_max_2x2(e0, e1, e2, e3):  # pragma: no cover - compiled
    """Row-major index of a 2x2 tile's first maximal element (its first NaN if any), without a
    branch the data decide but the rare NaN test: integer arithmetic on comparisons."""
    if (e0 == e0) & (e1 == e1) & (e2 == e2) & (e3 == e3):
        k1 = np.int64(e1 > e0)
        best = max(e0, e1)
        k2 = np.int64(e2 > best)
        k3 = np.int64(e3 > max(best, e2))
        k = k1 + (2 - k1) * k2
        return k + (3 - k) * k3
    w1 = _beats(e1, e0) & _holds(e1, e2) & _holds(e1, e3)
    w2 = _beats(e2, e0) & _beats(e2, e1) & _holds(e2, e3)
    w3 = _beats(e3, e0) & _beats(e3, e1) & _beats(e3, e2)
    return np.int64(w1) + 2 * np.int64(w2) + 3 * np.int64(w3)


@njit
def max_pool_2x2(x, out):  # pragma: no cover - compiled
    """max_pool with 2x2 tiles: two max per pair, the NaN test the one branch (3-5x the general
    kernel's per-element compare-and-branch on random data)."""
    nb, nc, oh, ow = out.shape
    for n in range(nb):
        for c in range(nc):
            for y in range(oh):
                r0, r1, o = x[n, c, 2 * y], x[n, c, 2 * y + 1], out[n, c, y]
                for v in range(ow):
                    e0, e1, e2, e3 = r0[2 * v], r0[2 * v + 1], r1[2 * v], r1[2 * v + 1]
                    if (e0 == e0) & (e1 == e1) & (e2 == e2) & (e3 == e3):
                        o[v] = max(max(e0, e1), max(e2, e3))  # ties keep the earlier: as the loop
                    else:
                        o[v] = e0 if e0 != e0 else (e1 if e1 != e1 else (e2 if e2 != e2 else e3))


@njit
def max_pool_grad_2x2(x, dy, dx):  # pragma: no cover - compiled
    """The gradient of the 2x2 tile pool into a zero-filled ``dx``: each tile's cotangent is
    stored once, at its first maximal element in row-major order (the first NaN if any); the
    other three and a last row or column no tile covers stay zero. A data-dependent branch or
    select per element cost 3-4x this on random data (mispredictions; no loop long enough to
    vectorise at the CNN's 14- and 7-tile rows). Flat arrays with unsigned indices: no
    negative-index wraparound on the computed store, 1.5-2x the row views' time."""
    h, w = x.shape[2:]
    nb, nc, oh, ow = dy.shape
    xf, gf, df = x.reshape(-1), dy.reshape(-1), dx.reshape(-1)
    one, uw = np.uint64(1), np.uint64(w)
    for plane in range(nb * nc):
        for y in range(oh):
            row = np.uint64((plane * h + 2 * y) * w)  # the tile's top row
            g = np.uint64((plane * oh + y) * ow)
            for v in range(np.uint64(ow)):
                c = row + v + v
                k = _first_max_2x2(xf[c], xf[c + one], xf[c + uw], xf[c + uw + one])
                df[c + np.uint64(k >> 1) * uw + np.uint64(k & 1)] = gf[g + v]
