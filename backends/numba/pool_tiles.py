"""Max pooling over tiles (kernel == stride, no padding: the CNN's 2x2 pool) for the Numba
backend: every window lies inside the input, so the loop needs no bounds tests (1.3-1.5x the
general kernel here), and the 2x2 gradient writes each input element once, by selects."""

from __future__ import annotations

from numba import njit


def applies(kernel, stride, padding) -> bool:
    return tuple(kernel) == tuple(stride) and tuple(padding) == (0, 0)


@njit(cache=True)
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


@njit(cache=True)
def max_pool_grad_2x2(x, dy, dx, zero):  # pragma: no cover - compiled
    """The gradient of the 2x2 tile pool, branch-free: each tile's cotangent goes to its first
    maximal element in row-major order (the first NaN if any), zero to the other three and to
    a last row or column no tile covers. ``zero`` has dy's dtype (an integer 0 would make the
    selects float64). 1.5-3x the general kernel, which branches per element."""
    nb, nc, h, w = x.shape
    oh, ow = dy.shape[2:]
    for n in range(nb):
        for c in range(nc):
            for y in range(oh):
                r0, r1 = x[n, c, 2 * y], x[n, c, 2 * y + 1]
                d0, d1 = dx[n, c, 2 * y], dx[n, c, 2 * y + 1]
                g = dy[n, c, y]
                for v in range(ow):
                    e00, e01, e10, e11 = r0[2 * v], r0[2 * v + 1], r1[2 * v], r1[2 * v + 1]
                    best, k = e00, 0
                    take = e01 > best or (e01 != e01 and best == best)
                    best, k = (e01, 1) if take else (best, k)
                    take = e10 > best or (e10 != e10 and best == best)
                    best, k = (e10, 2) if take else (best, k)
                    take = e11 > best or (e11 != e11 and best == best)
                    k = 3 if take else k
                    gv = g[v]
                    d0[2 * v] = gv if k == 0 else zero
                    d0[2 * v + 1] = gv if k == 1 else zero
                    d1[2 * v] = gv if k == 2 else zero
                    d1[2 * v + 1] = gv if k == 3 else zero
                for v in range(2 * ow, w):
                    d0[v] = zero
                    d1[v] = zero
            for yy in range(2 * oh, h):
                dx[n, c, yy] = zero
