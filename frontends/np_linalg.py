"""Products and linear algebra on tracers: matmul/dot/tensordot/vecdot/outer/einsum as
transposes, reshapes and batched matmuls; ``np.linalg`` as the registry's linalg ops."""

from __future__ import annotations

import numpy as np

from bpir.errors import ShapeError
from bpir.location import user_location
from bpir.ops.layout import broadcast_shapes
from bpir.types import dtype_name

from .np_common import builder, fail, float_dtype, norm_axis, refuse, refuse_unless
from .np_reductions import amax, amin, reduce_sum
from .np_shapes import diagonal, expand_dims, matrix_transpose, moveaxis, squeeze, stack
from .tracer import binary, lift, result_dtype, shape_of, unary, wrap


def matmul(a, b_, /):
    """NumPy matmul semantics: 1-D operands promoted and squeezed, batch dims broadcast."""
    b = builder()
    dt = result_dtype(a, b_)
    x, y = lift(a, dt), lift(b_, dt)
    if x.type.ndim == 0 or y.type.ndim == 0:
        raise ShapeError(f"matmul: operands must not be scalars, got {x.shape} and {y.shape}")
    keep_m, keep_n = x.type.ndim > 1, y.type.ndim > 1
    if not keep_m:
        x = b.reshape(x, (1, x.shape[0]))
    if not keep_n:
        y = b.reshape(y, (y.shape[0], 1))
    if x.shape[-1] != y.shape[-2]:
        raise ShapeError(f"matmul: cannot multiply {shape_of(a)} by {shape_of(b_)} at {user_location()}")
    batch = broadcast_shapes(x.shape[:-2], y.shape[:-2])
    x = b.broadcast_to(x, batch + x.shape[-2:])
    y = b.broadcast_to(y, batch + y.shape[-2:])
    r = b.matmul(x, y)
    return wrap(b.reshape(r, batch + x.shape[-2:-1] * keep_m + y.shape[-1:] * keep_n))


def dot(a, b, out=None):
    refuse("dot", out=out)
    if not shape_of(a) or not shape_of(b):
        return binary("mul", a, b)
    if len(shape_of(b)) > 2:  # sum over a's last and b's second-to-last axis
        return tensordot(a, b, axes=([-1], [-2]))
    return matmul(a, b)


def vdot(a, b, /):
    return matmul(_flat(a), _flat(b))


def inner(a, b, /):
    if not shape_of(a) or not shape_of(b):
        return binary("mul", a, b)
    return tensordot(a, b, axes=([-1], [-1]))


def _flat(x):
    return wrap(builder().reshape(lift(x), (int(np.prod(shape_of(x), dtype=np.int64)),)))


def outer(a, b, out=None):
    refuse("outer", out=out)
    x, y = _flat(a), _flat(b)
    return binary("mul", x.reshape(-1, 1), y.reshape(1, -1))


def linalg_outer(x1, x2, /):
    if len(shape_of(x1)) != 1 or len(shape_of(x2)) != 1:
        raise ShapeError("np.linalg.outer needs 1-D arrays")
    return outer(x1, x2)


def tensordot(a, b, axes=2):
    na, nb = len(shape_of(a)), len(shape_of(b))
    if isinstance(axes, int):
        ax_a, ax_b = list(range(na - axes, na)), list(range(axes))
    else:
        ax_a, ax_b = axes
        ax_a = [ax_a] if isinstance(ax_a, int) else list(ax_a)
        ax_b = [ax_b] if isinstance(ax_b, int) else list(ax_b)
    ax_a = [norm_axis(i, na) for i in ax_a]
    ax_b = [norm_axis(i, nb) for i in ax_b]
    sa, sb = shape_of(a), shape_of(b)
    if [sa[i] for i in ax_a] != [sb[i] for i in ax_b]:
        raise ShapeError(f"tensordot: contracted axes of {sa} and {sb} differ in size")
    free_a = [i for i in range(na) if i not in ax_a]
    free_b = [i for i in range(nb) if i not in ax_b]
    k = int(np.prod([sa[i] for i in ax_a], dtype=np.int64))
    bld = builder()
    dt = result_dtype(a, b)
    x = bld.transpose(lift(a, dt), free_a + ax_a)
    y = bld.transpose(lift(b, dt), ax_b + free_b)
    m = int(np.prod([sa[i] for i in free_a], dtype=np.int64))
    n = int(np.prod([sb[i] for i in free_b], dtype=np.int64))
    r = bld.matmul(bld.reshape(x, (m, k)), bld.reshape(y, (k, n)))
    return wrap(bld.reshape(r, tuple(sa[i] for i in free_a) + tuple(sb[i] for i in free_b)))


def vecdot(x1, x2, /, *, axis=-1):
    return reduce_sum(binary("mul", x1, x2), axis=axis)


def linalg_tensordot(x1, x2, /, *, axes=2):
    return tensordot(x1, x2, axes)


def trace(a, offset=0, axis1=0, axis2=1, dtype=None, out=None):
    refuse("trace", out=out)
    return reduce_sum(diagonal(a, offset, axis1, axis2), axis=-1, dtype=dtype)


def linalg_trace(x, /, *, offset=0, dtype=None):
    return trace(x, offset, -2, -1, dtype)


def cross(a, b, axisa=-1, axisb=-1, axisc=-1, axis=None):
    if axis is not None:
        axisa = axisb = axisc = axis
    x, y = moveaxis(a, axisa, -1), moveaxis(b, axisb, -1)
    if shape_of(x)[-1] != 3 or shape_of(y)[-1] != 3:
        fail("np.cross of traced values supports 3-vectors only")
    xs = [x[..., i] for i in range(3)]
    ys = [y[..., i] for i in range(3)]
    c = stack([xs[1] * ys[2] - xs[2] * ys[1], xs[2] * ys[0] - xs[0] * ys[2], xs[0] * ys[1] - xs[1] * ys[0]],
              axis=-1)  # fmt: skip
    return moveaxis(c, -1, axisc)


def linalg_cross(x1, x2, /, *, axis=-1):
    return cross(x1, x2, axis=axis)


def einsum(subscripts, *operands, out=None, dtype=None, order="K", casting="safe", optimize=False):
    """One- and two-operand einsum as transpose + reshape + matmul + reduce_sum; a label
    repeated in one operand takes its diagonal (``ii->i``, ``ii``)."""
    refuse("einsum", out=out)
    if not isinstance(subscripts, str):
        fail("np.einsum: the interleaved (operand, sublist) form is not supported; use a subscripts string")
    if "..." in subscripts:
        fail("np.einsum with '...' is not supported on traced values; write the axes out")
    ins, arrow, out_labels = subscripts.replace(" ", "").partition("->")
    ins = ins.split(",")
    if not arrow:
        counts = "".join(ins)
        out_labels = "".join(sorted(c for c in set(counts) if counts.count(c) == 1))
    if len(ins) != len(operands) or len(operands) not in (1, 2):
        fail("np.einsum supports one or two operands on traced values")
    dt = dtype_name(dtype) if dtype is not None else result_dtype(*operands)
    vals = [lift(v, dt) for v in operands]
    b = builder()
    for k, lab in enumerate(ins):
        while len(set(lab)) != len(lab):  # repeated label: take the diagonal of those two axes
            c = next(c for c in lab if lab.count(c) > 1)
            i, j = lab.index(c), lab.index(c, lab.index(c) + 1)
            vals[k] = lift(diagonal(wrap(vals[k]), 0, i, j))
            lab = "".join(x for n, x in enumerate(lab) if n not in (i, j)) + c
        ins[k] = lab
    for k, (lab, v) in enumerate(zip(ins, vals)):  # labels in one operand only and not kept
        others = "".join(ins[:k] + ins[k + 1 :]) + out_labels
        gone = tuple(i for i, c in enumerate(lab) if c not in others)
        if gone:
            vals[k] = b.reduce_sum(v, axes=gone, keepdims=False)
            ins[k] = "".join(c for c in lab if c not in others)
    if len(vals) == 1:
        return wrap(b.transpose(vals[0], tuple(ins[0].index(c) for c in out_labels)))
    (la, lb), (x, y) = ins, vals
    size = dict(zip(la, x.shape)) | dict(zip(lb, y.shape))
    batch = [c for c in la if c in lb and c in out_labels]
    contract = [c for c in la if c in lb and c not in out_labels]
    free_a = [c for c in la if c not in lb]
    free_b = [c for c in lb if c not in la]

    def count(cs):
        return int(np.prod([size[c] for c in cs], dtype=np.int64))

    def prep(v, lab, order, parts):
        v = b.transpose(v, tuple(lab.index(c) for c in order))
        return b.reshape(v, (count(batch), *(count(p) for p in parts)))

    r = b.matmul(prep(x, la, batch + free_a + contract, (free_a, contract)),
                 prep(y, lb, batch + contract + free_b, (contract, free_b)))  # fmt: skip
    labels = batch + free_a + free_b
    r = b.reshape(r, tuple(size[c] for c in labels))
    return wrap(b.transpose(r, tuple(labels.index(c) for c in out_labels)))


# -- np.linalg -------------------------------------------------------------------------------


def _matrix(x, fn: str):
    v = lift(x, float_dtype(x))
    if v.type.ndim < 2:
        raise ShapeError(f"np.linalg.{fn} needs matrices (rank >= 2), got {v.shape} at {user_location()}")
    return v


def inv(a):
    return wrap(builder().inv(_matrix(a, "inv")))


def solve(a, b):
    m = _matrix(a, "solve")
    dt = m.dtype
    r = lift(b, dt)
    bld = builder()
    vector = r.type.ndim == 1  # NumPy 2: b is a vector only when it is 1-D
    if vector:
        r = bld.reshape(r, (*r.shape, 1))
    batch = broadcast_shapes(m.shape[:-2], r.shape[:-2])
    m = bld.broadcast_to(m, batch + m.shape[-2:])
    r = bld.broadcast_to(r, batch + r.shape[-2:])
    x = bld.solve(m, r)
    return wrap(bld.reshape(x, x.shape[:-1]) if vector else x)


def det(a):
    return wrap(builder().det(_matrix(a, "det")))


def slogdet(a):
    sign, logabs = builder().slogdet(_matrix(a, "slogdet"))
    return wrap(sign), wrap(logabs)


def cholesky(a, /, *, upper=False):
    ell = wrap(builder().cholesky(_matrix(a, "cholesky")))
    return matrix_transpose(ell) if upper else ell


def qr(a, mode="reduced"):
    refuse_unless("qr", "mode", mode, "reduced", "r")
    q, r = builder().qr(_matrix(a, "qr"))
    return wrap(r) if mode == "r" else (wrap(q), wrap(r))


def eigh(a, UPLO="L"):  # noqa: N803 (NumPy's name)
    refuse_unless("eigh", "UPLO", UPLO, "L")
    w, v = builder().eigh(_matrix(a, "eigh"))
    return wrap(w), wrap(v)


def eigvalsh(a, UPLO="L"):  # noqa: N803
    return eigh(a, UPLO)[0]


def svd(a, full_matrices=True, compute_uv=True, hermitian=False):
    refuse_unless("svd", "hermitian", hermitian, False)
    v = _matrix(a, "svd")
    u, s, vh = builder().svd(v)
    if not compute_uv:
        return wrap(s)
    if full_matrices and v.shape[-1] != v.shape[-2]:
        fail("np.linalg.svd: full_matrices=True of a non-square matrix is not supported on traced "
             "values; pass full_matrices=False")  # fmt: skip
    return wrap(u), wrap(s), wrap(vh)


def svdvals(x, /):
    return svd(x, compute_uv=False)


def matrix_power(a, n):
    n = int(n)
    x = wrap(_matrix(a, "matrix_power"))
    if n < 0:
        x, n = inv(x), -n
    if n == 0:
        eye = np.broadcast_to(np.eye(shape_of(x)[-1]), shape_of(x)).astype(x.dtype)
        return wrap(lift(eye))
    result, base = None, x
    while n:  # binary powering
        if n & 1:
            result = base if result is None else matmul(result, base)
        n >>= 1
        if n:
            base = matmul(base, base)
    return result


def matrix_rank(A, tol=None, hermitian=False, *, rtol=None):  # noqa: N803
    refuse_unless("matrix_rank", "hermitian", hermitian, False)
    s = svdvals(A)
    m, n = shape_of(A)[-2:]
    if tol is None:
        factor = rtol if rtol is not None else max(m, n) * np.finfo(s.dtype).eps
        tol = amax(s, axis=-1, keepdims=True) * factor
    return reduce_sum(binary("gt", s, tol), axis=-1)


def pinv(a, rcond=None, hermitian=False, *, rtol=None):
    fail("np.linalg.pinv is not supported on traced values (its gradient needs the singular "
         "vectors); for full column rank A use np.linalg.solve(A.T @ A, A.T)")  # fmt: skip


# -- norms -----------------------------------------------------------------------------------


def vector_norm(x, /, *, axis=None, keepdims=False, ord=2):
    a = unary("abs", x, dtype=float_dtype(x))
    if ord == 2:
        return unary("sqrt", reduce_sum(a * a, axis=axis, keepdims=keepdims))
    if ord == np.inf:
        return amax(a, axis=axis, keepdims=keepdims)
    if ord == -np.inf:
        return amin(a, axis=axis, keepdims=keepdims)
    if ord == 1:
        return reduce_sum(a, axis=axis, keepdims=keepdims)
    if ord == 0:
        return reduce_sum(binary("ne", a, 0.0), axis=axis, keepdims=keepdims, dtype=a.dtype)
    if isinstance(ord, (int, float)):
        return reduce_sum(a**ord, axis=axis, keepdims=keepdims) ** (1.0 / ord)
    fail(f"np.linalg.vector_norm: ord={ord!r} is not supported")


def matrix_norm(x, /, *, keepdims=False, ord="fro"):
    return _matrix_norm(x, ord, (-2, -1), keepdims)


def _matrix_norm(x, ord, axes, keepdims):
    nd = len(shape_of(x))
    r, c = (norm_axis(a, nd) for a in axes)
    if ord in ("fro", None):
        out = vector_norm(x, axis=(r, c), keepdims=keepdims)
    elif ord == "nuc" or ord in (2, -2):
        s = svdvals(moveaxis(x, (r, c), (-2, -1)))
        out = reduce_sum(s, axis=-1) if ord == "nuc" else amax(s, axis=-1) if ord == 2 else amin(s, axis=-1)
        return expand_dims(out, (r, c)) if keepdims else out
    elif ord in (1, -1, np.inf, -np.inf):
        along, across = (r, c) if ord in (1, -1) else (c, r)
        sums = reduce_sum(unary("abs", x, dtype=float_dtype(x)), axis=along, keepdims=True)
        pick = amax if ord in (1, np.inf) else amin
        out = pick(sums, axis=across, keepdims=True)
        if not keepdims:
            out = squeeze(out, axis=(r, c))
    else:
        fail(f"np.linalg.matrix_norm: ord={ord!r} is not supported")
    return out


def norm(x, ord=None, axis=None, keepdims=False):
    nd = len(shape_of(x))
    if axis is None and ord is None:  # the 2-norm of the flattened array
        return vector_norm(x, axis=None, keepdims=keepdims)
    if axis is None:
        if nd not in (1, 2):
            raise ShapeError(f"np.linalg.norm with ord={ord!r} needs a 1-D or 2-D array, got {shape_of(x)}")
        axis = tuple(range(nd))
    axes = tuple(axis) if isinstance(axis, (tuple, list)) else (axis,)
    if len(axes) == 1:
        return vector_norm(x, axis=axes[0], keepdims=keepdims, ord=2 if ord is None else ord)
    if len(axes) == 2:
        return _matrix_norm(x, ord, axes, keepdims)
    fail(f"np.linalg.norm: axis={axis!r} is not supported")
