"""JAX implementations of the ops that are more than one ``jax.lax`` call; the generated JAX
source calls these (as ``k.<name>``). Gradient ops of convolution and average pooling are the
exact linear transposes of the forward op, so XLA sees ordinary convolutions."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

HIGHEST = lax.Precision.HIGHEST  # f32 matmuls/convs in full precision on every platform


def matmul(a, b, transpose_a=False, transpose_b=False):
    """A batched matmul as one ``dot_general`` whose dimension numbers say which axes contract,
    so a transposed operand is never materialised (as jax.numpy folds ``x.T @ y``)."""
    nb = a.ndim - 2
    batch = tuple(range(nb))
    ca = nb if transpose_a else nb + 1
    cb = nb + 1 if transpose_b else nb
    out = lax.dot_general(a, b, (((ca,), (cb,)), (batch, batch)), precision=HIGHEST)
    return out  # (batch..., m, n): dot_general orders batch, a's free axis, then b's free axis


def conv2d(x, w, stride, padding, dilation, groups):
    return lax.conv_general_dilated(
        x, w, window_strides=stride, padding=[(p, p) for p in padding], rhs_dilation=dilation,
        feature_group_count=groups, dimension_numbers=("NCHW", "OIHW", "NCHW"), precision=HIGHEST,
    )  # fmt: skip


def conv2d_input_grad(dy, w, stride, padding, dilation, groups, input_hw):
    x = jax.ShapeDtypeStruct((dy.shape[0], w.shape[1] * groups, *input_hw), dy.dtype)
    (dx,) = jax.linear_transpose(lambda x: conv2d(x, w, stride, padding, dilation, groups), x)(dy)
    return dx


def conv2d_weight_grad(x, dy, stride, padding, dilation, groups, kernel_hw):
    w = jax.ShapeDtypeStruct((dy.shape[1], x.shape[1] // groups, *kernel_hw), x.dtype)
    (dw,) = jax.linear_transpose(lambda w: conv2d(x, w, stride, padding, dilation, groups), w)(dy)
    return dw


def _window(kernel, stride, padding):
    return (1, 1, *kernel), (1, 1, *stride), [(0, 0), (0, 0), *((p, p) for p in padding)]


def max_pool2d(x, kernel, stride, padding):
    return lax.reduce_window(x, -jnp.inf, lax.max, *_window(kernel, stride, padding))


def tiles_exactly(x_shape, kernel, stride, padding) -> bool:
    """Windows that tile the input: no overlap, no padding, no remainder."""
    return (tuple(kernel) == tuple(stride) and not any(padding)
            and all(n % k == 0 for n, k in zip(x_shape[2:], kernel)))  # fmt: skip


def max_pool2d_grad(x, dy, kernel, stride, padding):
    """Each window's cotangent to its first maximal element in row-major order (a NaN counts
    as maximal, as in ``np.argmax``), for windows that tile the input: the windows become a
    trailing axis by reshapes, so XLA fuses it all (no strided slices, no interior pads)."""
    n, c, h, w = x.shape
    kh, kw = kernel
    windows = x.reshape(n, c, h // kh, kh, w // kw, kw).transpose(0, 1, 2, 4, 3, 5)
    first = jnp.argmax(windows.reshape(n, c, h // kh, w // kw, kh * kw), axis=-1)
    g = jnp.where(jnp.arange(kh * kw) == first[..., None], dy[..., None], jnp.zeros((), dy.dtype))
    return g.reshape(n, c, h // kh, w // kw, kh, kw).transpose(0, 1, 2, 4, 3, 5).reshape(x.shape)


def avg_pool2d(x, kernel, stride, padding):
    # a concrete zero init lets JAX recognise the window sum (which has a transpose rule)
    total = lax.reduce_window(x, np.zeros((), x.dtype), lax.add, *_window(kernel, stride, padding))
    return total / jnp.asarray(kernel[0] * kernel[1], x.dtype)


def avg_pool2d_grad(dy, kernel, stride, padding, input_hw):
    x = jax.ShapeDtypeStruct((*dy.shape[:2], *input_hw), dy.dtype)
    (dx,) = jax.linear_transpose(lambda x: avg_pool2d(x, kernel, stride, padding), x)(dy)
    return dx


def pad(x, lo, hi, interior, value):
    return lax.pad(x, jnp.asarray(value, x.dtype), list(zip(lo, hi, interior)))


def scatter_add_along_axis(idx, upd, axis, dim):
    """``out[..., idx[p], ...] += upd[p]`` along ``axis`` as one ``scatter-add`` whose other axes
    are batching dimensions: each update lands in its own row, so XLA writes it directly (a
    one-hot product costs the small MLP step 15%) and the SPMD partitioner splits the rows like
    any batch axis. Negative indices count from the end; others out of range are dropped."""
    batch = tuple(d for d in range(idx.ndim) if d != axis)
    numbers = lax.ScatterDimensionNumbers(
        update_window_dims=(), inserted_window_dims=(axis,), scatter_dims_to_operand_dims=(axis,),
        operand_batching_dims=batch, scatter_indices_batching_dims=batch,
    )  # fmt: skip
    idx = jnp.where(idx < 0, idx + dim, idx)[..., None]
    shape = (*idx.shape[:axis], dim, *idx.shape[axis + 1 : -1])
    return lax.scatter_add(
        jnp.zeros(shape, upd.dtype), idx, upd, numbers, mode=lax.GatherScatterMode.FILL_OR_DROP
    )


def one_hot(labels, num_classes, dtype):
    return (labels[..., None] == jnp.arange(num_classes)).astype(dtype)


def constrain(x, spec: tuple[str, ...], mesh):
    """``sharding_constraint``: each spec entry is "" or mesh axis names joined by ","; without a
    mesh (an unsharded compile) the value is left as it is."""
    if mesh is None:
        return x
    parts = [None if not e else tuple(e.split(",")) if "," in e else e for e in spec]
    return lax.with_sharding_constraint(
        x, jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec(*parts))
    )


# -- threefry-2x32 random bits, as uint32 lax ops (independent of jax's PRNG configuration) ----
_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))


def _threefry2x32(k0, k1, x0, x1):
    u32 = jnp.uint32
    ks = (k0, k1, k0 ^ k1 ^ u32(0x1BD11BDA))
    a, b = x0 + ks[0], x1 + ks[1]
    for i in range(5):
        for r in _ROTATIONS[i % 2]:
            a = a + b
            b = ((b << u32(r)) | (b >> u32(32 - r))) ^ a
        a = a + ks[(i + 1) % 3]
        b = b + ks[(i + 2) % 3] + u32(i + 1)
    return a, b


def _threefry_counts(key, shape):
    """Bits for flat positions 0..n-1 of ``shape``: counter (i >> 32, i & 0xFFFFFFFF)."""
    n = int(np.prod(shape, dtype=np.int64))
    i = lax.iota(jnp.uint64, n)
    hi, lo = (i >> jnp.uint64(32)).astype(jnp.uint32), i.astype(jnp.uint32)
    a, b = _threefry2x32(key[0], key[1], hi, lo)
    return a.reshape(shape), b.reshape(shape)


def random_split(key, num):
    a, b = _threefry_counts(key, (num,))
    return jnp.stack([a, b], axis=-1)


def random_uniform(key, shape, dtype):
    """Floats in [0, 1): the top mantissa bits times 2**-mantissa (exact, equal to the bitcast)."""
    a, b = _threefry_counts(key, shape)
    if dtype == jnp.float32:
        return ((a ^ b) >> jnp.uint32(9)).astype(jnp.float32) * jnp.float32(2.0**-23)
    m = (a.astype(jnp.uint64) << jnp.uint64(20)) | (b >> jnp.uint32(12)).astype(jnp.uint64)
    return m.astype(jnp.float64) * jnp.float64(2.0**-52)
