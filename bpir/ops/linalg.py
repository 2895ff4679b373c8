"""Dense linear algebra over the last two axes (leading axes are a batch): inv, solve, det,
slogdet, cholesky, qr (reduced), eigh and svd (thin). Backends call their library (LAPACK
through NumPy, jax.numpy.linalg); none has a decomposition into simpler ops.

cholesky and eigh read the lower triangle only, as NumPy does, and their gradients are with
respect to that triangle (the upper one has no influence on the result)."""

from __future__ import annotations

import numpy as np

from ..errors import ShapeError
from ..registry import Kind, OpDef, register
from ..types import TensorType, is_float
from .contraction import swap_last


def _square(t: TensorType) -> None:
    if t.ndim < 2 or t.shape[-1] != t.shape[-2]:
        raise ShapeError(f"needs square matrices in the last two axes, got {t.shape}")
    if not is_float(t.dtype) or t.dtype == "f16":
        raise ShapeError(f"needs float32 or float64 matrices, got {t.dtype}")


def _same(types, a):
    (t,) = types
    _square(t)
    return [t]


def _det_rule(types, a):
    (t,) = types
    _square(t)
    return [TensorType(t.shape[:-2], t.dtype)]


def _slogdet_rule(types, a):
    return _det_rule(types, a) * 2


def _solve_rule(types, a):
    m, r = types
    _square(m)
    if r.ndim != m.ndim or r.shape[:-2] != m.shape[:-2] or r.shape[-2] != m.shape[-1] or r.dtype != m.dtype:
        raise ShapeError(f"cannot solve {m} against {r} (want [...,n,n] and [...,n,k])")
    return [r]


def _qr_rule(types, a):
    (t,) = types
    if t.ndim < 2 or not is_float(t.dtype) or t.dtype == "f16":
        raise ShapeError(f"needs float32 or float64 matrices, got {t}")
    *batch, m, n = t.shape
    k = min(m, n)
    return [TensorType((*batch, m, k), t.dtype), TensorType((*batch, k, n), t.dtype)]


def _eigh_rule(types, a):
    (t,) = types
    _square(t)
    return [TensorType(t.shape[:-1], t.dtype), t]


def _svd_rule(types, a):
    q, r = _qr_rule(types, a)
    *batch, m, n = types[0].shape
    k = min(m, n)
    return [q, TensorType((*batch, k), q.dtype), TensorType((*batch, k, n), q.dtype)]


# -- helpers for the VJP rules ---------------------------------------------------------------


def _mt(b, x):
    return swap_last(b, x)


def _mm(b, *xs):
    out = xs[0]
    for x in xs[1:]:
        out = b.matmul(out, x)
    return out


def _mask(b, x, k, lower=True):
    """tril(x, k) (or triu) over the last two axes, as a where against a constant mask."""
    n, m = x.shape[-2:]
    keep = np.tril(np.ones((n, m), dtype=bool), k) if lower else np.triu(np.ones((n, m), dtype=bool), k)
    return b.where(b.broadcast_to(b.const(keep), x.shape), x, b.scalar(0, x.dtype))


def _diag_part(b, x):
    return b.mul(x, b.broadcast_to(b.const(np.eye(x.shape[-1]), x.dtype), x.shape))


def _expand2(b, v, like):
    """A batch of scalars (shape [...]) broadcast over the trailing matrix axes of ``like``."""
    return b.broadcast_to(b.reshape(v, (*v.shape, 1, 1)), like.shape)


def _lower_only(b, s):
    """The gradient of a symmetric-input function whose input is read from its lower triangle:
    off-diagonal entries collect both halves of the symmetric gradient ``s``."""
    sym = b.mul(b.add(s, _mt(b, s)), b.scalar(0.5, s.dtype))
    return b.add(_mask(b, b.add(sym, sym), -1), _diag_part(b, sym))


# -- VJP rules -------------------------------------------------------------------------------


def _inv_vjp(b, node, cts):
    y, (g,) = node.out, cts
    yt = _mt(b, y)
    return [b.neg(_mm(b, yt, g, yt))]


def _solve_vjp(b, node, cts):
    (m, _), x, (g,) = node.inputs, node.out, cts
    gr = b.solve(_mt(b, m), g)
    return [b.neg(_mm(b, gr, _mt(b, x))), gr]


def _det_vjp(b, node, cts):
    (m,), d, (g,) = node.inputs, node.out, cts
    return [b.mul(_expand2(b, b.mul(g, d), m), _mt(b, b.inv(m)))]


def _slogdet_vjp(b, node, cts):
    (m,), (_, g) = node.inputs, cts
    if g is None:
        return [None]
    return [b.mul(_expand2(b, g, m), _mt(b, b.inv(m)))]


def _cholesky_vjp(b, node, cts):
    # A = L L^T: dL = L Phi(L^-1 dA L^-T), Phi = lower triangle with half the diagonal, so
    # the symmetric gradient is L^-T Phi(L^T Lbar) L^-1 (Murray, 2016)
    ell, (g,) = node.out, cts
    p = _mm(b, _mt(b, ell), g)
    phi = b.sub(_mask(b, p, 0), b.mul(_diag_part(b, p), b.scalar(0.5, p.dtype)))
    linv = b.inv(ell)
    return [_lower_only(b, _mm(b, _mt(b, linv), phi, linv))]


def _qr_vjp(b, node, cts):
    # reduced QR of an m x n matrix, m >= n (Walter and Lehmann; PyTorch's linalg_qr_backward):
    # M = R Rbar^T - Qbar^T Q, Abar = (Qbar + Q copyltu(M)) R^-T
    (a,), (q, r), (gq, gr) = node.inputs, node.outputs, cts
    if a.shape[-2] < a.shape[-1]:
        raise NotImplementedError(f"the gradient of qr of a wide matrix {a.shape} is not supported")
    gq = gq if gq is not None else b.zeros(q.type)
    gr = gr if gr is not None else b.zeros(r.type)
    m = b.sub(_mm(b, r, _mt(b, gr)), _mm(b, _mt(b, gq), q))
    low = _mask(b, m, -1)
    copyltu = b.add(b.add(low, _mt(b, low)), _diag_part(b, m))
    return [_mm(b, b.add(gq, _mm(b, q, copyltu)), _mt(b, b.inv(r)))]


def _eigh_vjp(b, node, cts):
    # A = V diag(w) V^T: Abar = V (diag(wbar) + F o (V^T Vbar)) V^T, F_ij = 1 / (w_j - w_i) off
    # the diagonal (distinct eigenvalues)
    (a,), (w, v), (gw, gv) = node.inputs, node.outputs, cts
    n = a.shape[-1]
    inner = b.zeros(a.type)
    if gw is not None:
        inner = b.mul(b.broadcast_to(b.reshape(gw, (*gw.shape[:-1], 1, n)), a.shape),
                      b.broadcast_to(b.const(np.eye(n), a.dtype), a.shape))  # fmt: skip
    if gv is not None:
        wi = b.broadcast_to(b.reshape(w, (*w.shape[:-1], n, 1)), a.shape)
        wj = b.broadcast_to(b.reshape(w, (*w.shape[:-1], 1, n)), a.shape)
        off = b.broadcast_to(b.const(~np.eye(n, dtype=bool)), a.shape)
        gap = b.where(off, b.sub(wj, wi), b.scalar(1, a.dtype))
        f = b.where(off, b.reciprocal(gap), b.scalar(0, a.dtype))
        inner = b.add(inner, b.mul(f, _mm(b, _mt(b, v), gv)))
    return [_lower_only(b, _mm(b, v, inner, _mt(b, v)))]


def _svd_vjp(b, node, cts):
    # singular values only: sbar -> U diag(sbar) Vh (the standard rule; gradients through the
    # singular vectors are not supported)
    (u, s, vh), (gu, gs, gvh) = node.outputs, cts
    if gu is not None or gvh is not None:
        raise NotImplementedError("gradients through the singular vectors of svd are not supported; "
                                  "svdvals and norms built on singular values are")  # fmt: skip
    k = s.shape[-1]
    scaled = b.mul(u, b.broadcast_to(b.reshape(gs, (*gs.shape[:-1], 1, k)), u.shape))
    return [b.matmul(scaled, vh)]


register(OpDef("inv", Kind.OTHER, 1, _same, vjp=_inv_vjp, impl=np.linalg.inv))
register(OpDef("solve", Kind.OTHER, 2, _solve_rule, vjp=_solve_vjp, impl=np.linalg.solve))
register(OpDef("det", Kind.OTHER, 1, _det_rule, vjp=_det_vjp, impl=np.linalg.det))
register(OpDef("slogdet", Kind.OTHER, 1, _slogdet_rule, vjp=_slogdet_vjp, impl=np.linalg.slogdet))
register(OpDef("cholesky", Kind.OTHER, 1, _same, vjp=_cholesky_vjp, impl=np.linalg.cholesky))
register(OpDef("qr", Kind.OTHER, 1, _qr_rule, vjp=_qr_vjp, impl=lambda a: np.linalg.qr(a, mode="reduced")))
register(OpDef("eigh", Kind.OTHER, 1, _eigh_rule, vjp=_eigh_vjp, impl=np.linalg.eigh))
register(OpDef("svd", Kind.OTHER, 1, _svd_rule, vjp=_svd_vjp,
               impl=lambda a: np.linalg.svd(a, full_matrices=False)))  # fmt: skip
