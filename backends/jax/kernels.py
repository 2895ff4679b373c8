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
    if idx.shape[axis] == 1:  # one index per row (a label's gradient): a one-hot product, which
        # XLA fuses and partitions like any elementwise op (a scatter makes it gather the indices)
        classes = lax.broadcasted_iota(idx.dtype, (*idx.shape[:axis], dim, *idx.shape[axis + 1 :]), axis)
        return jnp.where(idx == classes, upd, jnp.zeros((), upd.dtype))
    shape = list(idx.shape)
    shape[axis] = dim
    grid = list(jnp.indices(idx.shape, sparse=True))
    grid[axis] = idx
    return jnp.zeros(shape, upd.dtype).at[tuple(grid)].add(upd)


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
