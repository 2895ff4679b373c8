"""The Numba backend's convolution and pooling kernels (backends/numba/windows.py) against the
NumPy backend's kernels and against JAX (lax.conv_general_dilated, lax.reduce_window and their
VJPs) as an independent reference, over padding / stride / dilation / groups combinations."""

from __future__ import annotations

import numpy as np
import pytest
from bpir.backends.numba import windows as nw
from bpir.backends.numpy import kernels as npk
from conftest import assert_close

import bpir
import bpir.numpy as bnp

jax = pytest.importorskip("jax")
lax = jax.lax

# (x shape, w shape, stride, padding, dilation, groups)
CONVS = [
    ((2, 3, 6, 5), (4, 3, 3, 3), (1, 1), (1, 1), (1, 1), 1),
    ((1, 4, 7, 6), (4, 2, 2, 3), (2, 1), (1, 2), (2, 1), 2),
    ((2, 6, 5, 7), (6, 1, 3, 1), (1, 2), (0, 1), (1, 1), 6),  # depthwise, 3x1 kernel
    ((3, 4, 4, 4), (5, 4, 1, 1), (1, 1), (0, 0), (1, 1), 1),  # 1x1: no packing
    ((1, 2, 9, 8), (2, 2, 3, 3), (3, 2), (2, 2), (2, 3), 1),  # padding as wide as the kernel reach
]
# (x shape, kernel, stride, padding)
POOLS = [
    ((2, 3, 4, 6), (2, 2), (2, 2), (0, 0)),
    ((1, 2, 5, 5), (3, 3), (2, 2), (1, 1)),
    ((1, 2, 6, 5), (3, 2), (1, 2), (1, 1)),
    ((2, 1, 7, 7), (2, 3), (3, 1), (0, 1)),
]
DTYPES = ("float32", "float64")


def _conv_ids(c):
    return f"x{c[0]}-w{c[1]}-s{c[2]}-p{c[3]}-d{c[4]}-g{c[5]}"


def _jax_conv(x, w, stride, padding, dilation, groups):
    pads = [(p, p) for p in padding]
    return lax.conv_general_dilated(x, w, stride, pads, rhs_dilation=dilation, feature_group_count=groups,
                                    dimension_numbers=("NCHW", "OIHW", "NCHW"),
                                    precision=lax.Precision.HIGHEST)  # fmt: skip


def _close(got, *references, dtype):
    for ref in references:
        assert_close(got, np.asarray(ref).astype(dtype), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CONVS, ids=_conv_ids)
def test_conv_and_gradients_match_numpy_and_jax(case, dtype):
    xs, ws, stride, padding, dilation, groups = case
    rng = np.random.default_rng(0)
    x, w = (rng.standard_normal(s).astype(dtype) for s in (xs, ws))
    attrs = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    with jax.enable_x64(dtype == "float64"):
        y_ref, vjp = jax.vjp(lambda a, b: _jax_conv(a, b, **attrs), x, w)
        dy = rng.standard_normal(y_ref.shape).astype(dtype)
        dx_ref, dw_ref = vjp(dy)
    _close(nw.conv2d(x, w, **attrs), npk.conv2d(x, w, **attrs), y_ref, dtype=dtype)
    got = nw.conv2d_input_grad(dy, w, input_hw=xs[2:], **attrs)
    _close(got, npk.conv2d_input_grad(dy, w, input_hw=xs[2:], **attrs), dx_ref, dtype=dtype)
    got = nw.conv2d_weight_grad(x, dy, kernel_hw=ws[2:], **attrs)
    _close(got, npk.conv2d_weight_grad(x, dy, kernel_hw=ws[2:], **attrs), dw_ref, dtype=dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", POOLS, ids=lambda c: f"x{c[0]}-k{c[1]}-s{c[2]}-p{c[3]}")
def test_pools_and_gradients_match_numpy_and_jax(case, dtype):
    xs, kernel, stride, padding = case
    rng = np.random.default_rng(1)
    x = rng.standard_normal(xs).astype(dtype)  # continuous values: no ties, so JAX's rule agrees
    attrs = dict(kernel=kernel, stride=stride, padding=padding)
    dims, strides = (1, 1, *kernel), (1, 1, *stride)
    pads = ((0, 0), (0, 0), *((p, p) for p in padding))
    area = kernel[0] * kernel[1]
    with jax.enable_x64(dtype == "float64"):
        ymax, vjp_max = jax.vjp(lambda a: lax.reduce_window(a, -np.inf, lax.max, dims, strides, pads), x)
        yavg, vjp_avg = jax.vjp(lambda a: lax.reduce_window(a, 0.0, lax.add, dims, strides, pads) / area, x)
        dy = rng.standard_normal(ymax.shape).astype(dtype)
        (dmax,), (davg,) = vjp_max(dy), vjp_avg(dy)
    _close(nw.max_pool2d(x, **attrs), npk.max_pool2d(x, **attrs), ymax, dtype=dtype)
    _close(nw.avg_pool2d(x, **attrs), npk.avg_pool2d(x, **attrs), yavg, dtype=dtype)
    _close(nw.max_pool2d_grad(x, dy, **attrs), npk.max_pool2d_grad(x, dy, **attrs), dmax, dtype=dtype)
    got = nw.avg_pool2d_grad(dy, input_hw=xs[2:], **attrs)
    _close(got, npk.avg_pool2d_grad(dy, input_hw=xs[2:], **attrs), davg, dtype=dtype)


def test_max_pool_gradient_goes_to_the_first_maximal_element():
    x = np.array([[[[1, 3, 3, 0], [3, 2, 0, 0], [5, 5, 1, 1], [5, 5, 1, 1]]]], np.float32)
    dy = np.array([[[[1, 2], [4, 8]]]], np.float32)
    want = np.array([[[[0, 1, 2, 0], [0, 0, 0, 0], [4, 0, 8, 0], [0, 0, 0, 0]]]], np.float32)
    attrs = dict(kernel=(2, 2), stride=(2, 2), padding=(0, 0))
    np.testing.assert_array_equal(nw.max_pool2d_grad(x, dy, **attrs), want)
    np.testing.assert_array_equal(npk.max_pool2d_grad(x, dy, **attrs), want)
    # overlapping windows: each window sends its cotangent to its own first maximum
    over = dict(kernel=(2, 2), stride=(1, 1), padding=(1, 1))
    dy = np.arange(1, 26, dtype=np.float32).reshape(1, 1, 5, 5)
    np.testing.assert_array_equal(nw.max_pool2d_grad(x, dy, **over), npk.max_pool2d_grad(x, dy, **over))


def test_non_contiguous_and_other_dtypes():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3, 2, 6, 6)).astype(np.float32)[:, :, ::2, 1:]  # strided view
    w = rng.standard_normal((3, 2, 2, 2)).astype(np.float32).transpose(0, 1, 3, 2)
    attrs = dict(stride=(1, 1), padding=(1, 0), dilation=(1, 1), groups=1)
    assert_close(nw.conv2d(x, w, **attrs), npk.conv2d(x, w, **attrs), "float32")
    h = x.astype(np.float16)  # no Numba loop for float16: the NumPy kernel runs
    assert_close(
        nw.max_pool2d(h, (2, 2), (1, 1), (0, 0)), npk.max_pool2d(h, (2, 2), (1, 1), (0, 0)), "float16"
    )


def test_numba_backend_calls_these_kernels():
    rng = np.random.default_rng(3)
    x, w = rng.standard_normal((2, 2, 6, 6)), rng.standard_normal((3, 2, 3, 3))

    def loss(x, w):
        return np.sum(bnp.avg_pool2d(bnp.max_pool2d(bnp.conv2d(x, w, padding=1), 2, stride=1), 2) ** 2)

    f = bpir.compile(bpir.value_and_grad(loss, argnums=(0, 1)), backend="numba", example_args=(x, w))
    g = bpir.compile(bpir.value_and_grad(loss, argnums=(0, 1)), backend="numpy", example_args=(x, w))
    for op in ("conv2d", "conv2d_input_grad", "conv2d_weight_grad", "max_pool2d_grad", "avg_pool2d_grad"):
        assert f"nw.{op}(" in f.source
    (lf, (dxf, dwf)), (lg, (dxg, dwg)) = f(x, w), g(x, w)
    for a, b in ((lf, lg), (dxf, dxg), (dwf, dwg)):
        assert_close(a, b, "float64")
