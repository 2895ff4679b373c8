"""The Numba backend's stride-1 convolution kernels (backends/numba/conv.py: shifted runs of
padded planes, own blocked GEMM) against NumPy's kernels and finite differences, on shapes that
reach every remainder branch (output channels not multiples of 4, column rows one or two past a
multiple of 3, groups, dilation, asymmetric and zero padding, 1x1 kernels); and the CNN's tile
max pooling."""

from __future__ import annotations

import numpy as np
import pytest
from bpir.backends.numba import conv, pool_tiles
from bpir.backends.numba import windows as nw
from bpir.backends.numpy import kernels as npk
from conftest import assert_close

import bpir
import bpir.numpy as bnp

# (x shape, w shape, padding, dilation, groups), all stride 1
CONVS = [
    ((2, 3, 6, 5), (5, 3, 3, 3), (1, 1), (1, 1), 1),  # 5 outputs: one past a block of 4; 27 rows
    ((1, 4, 7, 6), (6, 2, 2, 3), (1, 2), (2, 1), 2),  # groups, dilation, asymmetric padding
    ((2, 3, 5, 7), (3, 1, 3, 1), (1, 0), (1, 1), 3),  # depthwise 3x1, no horizontal padding
    ((3, 4, 4, 4), (7, 4, 1, 1), (0, 0), (1, 1), 1),  # 1x1: 4 rows, one past a block of 3
    ((2, 2, 5, 6), (5, 2, 2, 2), (1, 1), (1, 1), 1),  # 2x2: 8 rows, two past two blocks of 3
    ((1, 2, 9, 8), (8, 2, 3, 3), (2, 0), (1, 2), 1),  # padding as wide as the kernel reach
]


def _ids(c):
    return f"x{c[0]}-w{c[1]}-p{c[2]}-d{c[3]}-g{c[4]}"


@pytest.mark.parametrize("dtype", ("float32", "float64"))
@pytest.mark.parametrize("case", CONVS, ids=_ids)
def test_stride_one_kernels_match_numpy(case, dtype):
    xs, ws, padding, dilation, groups = case
    assert conv.applies((1, 1), padding, dilation, ws[2:])
    rng = np.random.default_rng(0)
    x, w = (rng.standard_normal(s).astype(dtype) for s in (xs, ws))
    attrs = dict(stride=(1, 1), padding=padding, dilation=dilation, groups=groups)
    y = nw.conv2d(x, w, **attrs)
    assert_close(y, npk.conv2d(x, w, **attrs), dtype)
    dy = rng.standard_normal(y.shape).astype(dtype)
    got = nw.conv2d_input_grad(dy, w, input_hw=xs[2:], **attrs)
    assert_close(got, npk.conv2d_input_grad(dy, w, input_hw=xs[2:], **attrs), dtype)
    got = nw.conv2d_weight_grad(x, dy, kernel_hw=ws[2:], **attrs)
    assert_close(got, npk.conv2d_weight_grad(x, dy, kernel_hw=ws[2:], **attrs), dtype)
    # these kernels ran (compiled for this dtype), not the im2col + BLAS path
    for kernel in (conv._conv_forward, conv._conv_weight_grad):
        assert any(str(sig[0].dtype) == dtype for sig in kernel.signatures)


def test_strided_and_over_padded_convolutions_take_the_general_path():
    assert not conv.applies((2, 1), (1, 1), (1, 1), (3, 3))
    assert not conv.applies((1, 1), (3, 0), (1, 1), (3, 3))  # input gradient padding would be < 0
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal((1, 2, 5, 5)), rng.standard_normal((3, 2, 3, 3))
    attrs = dict(stride=(1, 1), padding=(3, 0), dilation=(1, 1), groups=1)
    assert_close(nw.conv2d(x, w, **attrs), npk.conv2d(x, w, **attrs), "float64")
    dy = rng.standard_normal((1, 3, 9, 3))
    got = nw.conv2d_input_grad(dy, w, input_hw=(5, 5), **attrs)
    assert_close(got, npk.conv2d_input_grad(dy, w, input_hw=(5, 5), **attrs), "float64")


@pytest.mark.parametrize("case", CONVS, ids=_ids)
def test_a_conv_read_only_by_kernels_stays_wide_and_matches_numpy(case):
    """A convolution whose readers are all loop kernels comes back as wide as its padded input
    (``conv2d_wide``): the bias + relu kernel reads its valid region, and no crop is made. A
    convolution also returned to the caller, or read by another op, is made cropped."""
    xs, ws, padding, dilation, groups = case
    rng = np.random.default_rng(5)
    x, w, b = rng.standard_normal(xs), rng.standard_normal(ws), rng.standard_normal(ws[0])
    attrs = dict(stride=(1, 1), padding=padding, dilation=dilation, groups=groups)
    y = nw.conv2d_wide(x, w, **attrs)
    valid = npk.conv2d(x, w, **attrs)
    assert y.shape[3] == xs[3] + 2 * padding[1] and y.shape[:3] == valid.shape[:3]
    assert_close(y[..., : valid.shape[3]], valid, "float64")

    def layer(x, w, b):
        return np.maximum(bnp.conv2d(x, w, b, padding=padding, dilation=dilation, groups=groups), 0)

    def layer_and_conv(x, w, b):
        z = bnp.conv2d(x, w, padding=padding, dilation=dilation, groups=groups)
        return np.maximum(z + b.reshape(1, -1, 1, 1), 0), z, np.sum(z, axis=1)

    for fn, wide in ((layer, True), (layer_and_conv, False)):
        f = bpir.compile(fn, backend="numba", example_args=(x, w, b))
        assert ("nw.conv2d_wide(" in f.source) is wide and ("nw.conv2d(" in f.source) is not wide
        want = bpir.compile(fn, backend="numpy", example_args=(x, w, b))(x, w, b)
        got = f(x, w, b)
        for g, r in zip(
            got if isinstance(got, tuple) else [got], want if isinstance(want, tuple) else [want]
        ):
            assert_close(g, r, "float64")


def test_cnn_gradients_on_numba_match_finite_differences():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 2, 6, 6))
    w1, b1 = rng.standard_normal((5, 2, 3, 3)) * 0.5, rng.standard_normal(5) * 0.1
    w2 = rng.standard_normal((3, 5, 2, 2)) * 0.5

    def loss(x, w1, b1, w2):
        h = bnp.max_pool2d(np.maximum(bnp.conv2d(x, w1, b1, padding=1), 0), 2)
        return np.sum(np.tanh(bnp.conv2d(h, w2, padding=(1, 0), dilation=(2, 1))) ** 2)

    bpir.check_grad(loss, x, w1, b1, w2, backend="numba", argnums=(0, 1, 2, 3))  # raises on mismatch
    f = bpir.compile(bpir.grad(loss, argnums=(0, 1)), backend="numba", example_args=(x, w1, b1, w2))
    assert "nw.conv2d_input_grad(" in f.source and "nw.conv2d_weight_grad(" in f.source


@pytest.mark.parametrize("dtype", ("float32", "float64"))
def test_tile_max_pool_matches_numpy_with_nan_and_uncovered_edges(dtype):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 7, 9)).astype(dtype)  # 7x9: a row and a column no tile covers
    x[0, 1, 2, 3] = np.nan
    attrs = dict(kernel=(2, 3), stride=(2, 3), padding=(0, 0))
    assert pool_tiles.applies(**attrs)
    got = nw.max_pool2d(x, **attrs)
    np.testing.assert_array_equal(got, npk.max_pool2d(x, **attrs))
    assert np.isnan(got[0, 1, 1, 1])
    assert any(str(sig[0].dtype) == dtype for sig in pool_tiles.max_pool.signatures)


@pytest.mark.parametrize("dtype", ("float32", "float64"))
def test_2x2_tile_max_pool_gradient_matches_numpy_on_ties_nan_and_inf(dtype):
    rng = np.random.default_rng(4)
    x = rng.integers(-2, 3, (2, 3, 7, 9)).astype(dtype)  # many ties; 7x9: an uncovered row and column
    x[0, 0, 0, 1], x[0, 0, 2, 2], x[0, 0, 3, 3], x[1, 2, 4, 4] = np.nan, np.inf, np.nan, np.inf
    dy = rng.standard_normal((2, 3, 3, 4)).astype(dtype)
    attrs = dict(kernel=(2, 2), stride=(2, 2), padding=(0, 0))
    np.testing.assert_array_equal(nw.max_pool2d_grad(x, dy, **attrs), npk.max_pool2d_grad(x, dy, **attrs))
    assert any(str(sig[0].dtype) == dtype for sig in pool_tiles.max_pool_grad_2x2.signatures)


@pytest.mark.parametrize("dtype", ("float32", "float64"))
def test_2x2_tile_pool_and_gradient_on_every_tile_of_special_values(dtype):
    """Every 2x2 tile over {-inf, -1, -0.0, 0.0, 1, inf, nan} (7**4 tiles): the branch-free
    first-maximum rule and the NaN path give the reference's value and gradient."""
    values = np.array([-np.inf, -1.0, -0.0, 0.0, 1.0, np.inf, np.nan], dtype)
    tiles = np.stack(np.meshgrid(*[np.arange(7)] * 4, indexing="ij"), -1).reshape(-1, 4)
    x = values[tiles].reshape(1, 49, 7, 7, 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(1, 49, 14, 14)
    dy = np.arange(1, 49 * 49 + 1, dtype=dtype).reshape(1, 49, 7, 7)
    attrs = dict(kernel=(2, 2), stride=(2, 2), padding=(0, 0))
    np.testing.assert_array_equal(nw.max_pool2d(x, **attrs), npk.max_pool2d(x, **attrs))
    np.testing.assert_array_equal(nw.max_pool2d_grad(x, dy, **attrs), npk.max_pool2d_grad(x, dy, **attrs))
    assert any(str(sig[0].dtype) == dtype for sig in pool_tiles.max_pool_2x2.signatures)
