"""Real-world NumPy layer code, written for these tests in the style of well-known NN course
solutions (loops over a preallocated output, np.pad, gradients computed in place with
``dx[np.arange(N), y] -= 1``, np.hsplit, a masked stable sigmoid). Each forward traces on every
backend, and its gradient matches both the hand-written backward below and finite differences.

The code is unchanged model code: a plain ``np.zeros`` output filled with traced values becomes
traced (frontends/numpy_store.py); where that is not safe (the array has an alias), the trace
stops with a TraceError that says to create it ``np.zeros(shape, like=x)``, also checked here."""

from __future__ import annotations

import numpy as np
import pytest

import bpir

# -- forward functions, as model code writes them ----------------------------------------------------


def conv_forward_naive(x, w, b, stride=2, pad=1):
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    H_out = 1 + (H + 2 * pad - HH) // stride
    W_out = 1 + (W + 2 * pad - WW) // stride
    x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)), mode="constant")
    out = np.zeros((N, F, H_out, W_out))
    for n in range(N):
        for f in range(F):
            for i in range(H_out):
                for j in range(W_out):
                    window = x_pad[n, :, i * stride : i * stride + HH, j * stride : j * stride + WW]
                    out[n, f, i, j] = np.sum(window * w[f]) + b[f]
    return out


def max_pool_forward_naive(x, size=2, stride=2):
    N, C, H, W = x.shape
    H_out = 1 + (H - size) // stride
    W_out = 1 + (W - size) // stride
    out = np.zeros((N, C, H_out, W_out))
    for i in range(H_out):
        for j in range(W_out):
            window = x[:, :, i * stride : i * stride + size, j * stride : j * stride + size]
            out[:, :, i, j] = np.max(window, axis=(2, 3))
    return out


def conv_forward_im2col(x, w, b, pad=1):
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)), mode="constant")
    H_out, W_out = H + 2 * pad - HH + 1, W + 2 * pad - WW + 1
    cols = np.lib.stride_tricks.sliding_window_view(x_pad, (HH, WW), axis=(2, 3))  # N,C,Ho,Wo,HH,WW
    cols = cols.transpose(1, 4, 5, 0, 2, 3).reshape(C * HH * WW, N * H_out * W_out)
    out = w.reshape(F, -1) @ cols + b.reshape(-1, 1)
    return out.reshape(F, N, H_out, W_out).transpose(1, 0, 2, 3)


def softmax_loss(x, y):
    shifted = x - np.max(x, axis=1, keepdims=True)
    Z = np.sum(np.exp(shifted), axis=1, keepdims=True)
    log_probs = shifted - np.log(Z)
    probs = np.exp(log_probs)
    N = x.shape[0]
    loss = -np.sum(log_probs[np.arange(N), y]) / N
    dx = probs.copy()
    dx[np.arange(N), y] -= 1
    dx /= N
    return loss, dx


def svm_loss(x, y):
    N = x.shape[0]
    correct = x[np.arange(N), y]
    margins = np.maximum(0, x - correct[:, np.newaxis] + 1.0)
    margins[range(N), y] = 0
    loss = np.sum(margins) / N
    num_pos = np.sum(margins > 0, axis=1)
    dx = np.zeros_like(x)
    dx[margins > 0] = 1
    dx[np.arange(N), y] -= num_pos
    dx /= N
    return loss, dx


def sigmoid(x):
    pos_mask = x >= 0
    neg_mask = x < 0
    z = np.zeros_like(x)
    z[pos_mask] = np.exp(-x[pos_mask])
    z[neg_mask] = np.exp(x[neg_mask])
    top = np.ones_like(x)
    top[neg_mask] = z[neg_mask]
    return top / (1 + z)


def lstm_step_forward(x, prev_h, prev_c, Wx, Wh, b):
    a = x @ Wx + prev_h @ Wh + b
    ai, af, ao, ag = np.hsplit(a, 4)
    i, f, o, g = sigmoid(ai), sigmoid(af), sigmoid(ao), np.tanh(ag)
    next_c = f * prev_c + i * g
    next_h = o * np.tanh(next_c)
    return next_h, next_c


def lstm_forward(x, h0, Wx, Wh, b):
    N, T, D = x.shape
    H = h0.shape[1]
    h = np.zeros((N, T, H))
    prev_h, prev_c = h0, np.zeros_like(h0)
    for t in range(T):
        prev_h, prev_c = lstm_step_forward(x[:, t, :], prev_h, prev_c, Wx, Wh, b)
        h[:, t, :] = prev_h
    return h


# -- hand-written backward passes (plain NumPy) -------------------------------------------------------


def conv_backward_naive(dout, x, w, stride=2, pad=1):
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    dx_pad, dw = np.zeros_like(x_pad), np.zeros_like(w)
    for n in range(N):
        for f in range(F):
            for i in range(dout.shape[2]):
                for j in range(dout.shape[3]):
                    hs, ws = i * stride, j * stride
                    dw[f] += x_pad[n, :, hs : hs + HH, ws : ws + WW] * dout[n, f, i, j]
                    dx_pad[n, :, hs : hs + HH, ws : ws + WW] += w[f] * dout[n, f, i, j]
    return dx_pad[:, :, pad:-pad, pad:-pad], dw, dout.sum(axis=(0, 2, 3))


def max_pool_backward_naive(dout, x, size=2, stride=2):
    dx = np.zeros_like(x)
    for n in range(x.shape[0]):
        for c in range(x.shape[1]):
            for i in range(dout.shape[2]):
                for j in range(dout.shape[3]):
                    window = x[n, c, i * stride : i * stride + size, j * stride : j * stride + size]
                    r, s = np.unravel_index(np.argmax(window), window.shape)
                    dx[n, c, i * stride + r, j * stride + s] += dout[n, c, i, j]
    return (dx,)


def conv_backward_im2col(dout, x, w, pad=1):
    return conv_backward_naive(dout, x, w, stride=1, pad=pad)


def sigmoid_backward(dout, x):
    s = 1 / (1 + np.exp(-x))
    return (dout * s * (1 - s),)


def lstm_step_backward(dnext_h, x, prev_h, prev_c, Wx, Wh, b):
    """Gradients of sum(dnext_h * next_h) for (x, prev_h, prev_c, Wx, Wh, b)."""
    a = x @ Wx + prev_h @ Wh + b
    H = prev_h.shape[1]
    s = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    i, f, o, g = s(a[:, :H]), s(a[:, H : 2 * H]), s(a[:, 2 * H : 3 * H]), np.tanh(a[:, 3 * H :])
    next_c = f * prev_c + i * g
    do = dnext_h * np.tanh(next_c)
    dc = dnext_h * o * (1 - np.tanh(next_c) ** 2)
    da = np.hstack([dc * g * i * (1 - i), dc * prev_c * f * (1 - f), do * o * (1 - o), dc * i * (1 - g**2)])
    return da @ Wx.T, da @ Wh.T, dc * f, x.T @ da, prev_h.T @ da, da.sum(axis=0)


# -- the tests -----------------------------------------------------------------------------------------------


def _rand(rng, *shape):
    return rng.standard_normal(shape)


def _cases(rng):
    x4 = _rand(rng, 1, 2, 4, 4)
    w = _rand(rng, 2, 2, 3, 3)
    b = _rand(rng, 2)
    xl, h0 = _rand(rng, 2, 3), _rand(rng, 2, 2)
    Wx, Wh, bl = _rand(rng, 3, 8), _rand(rng, 2, 8), _rand(rng, 8)
    return {
        "conv_naive": (conv_forward_naive, (x4, w, b), (0, 1, 2), conv_backward_naive),
        "max_pool_naive": (max_pool_forward_naive, (_rand(rng, 2, 2, 4, 4),), (0,), max_pool_backward_naive),
        "conv_im2col": (conv_forward_im2col, (x4, w, b), (0, 1, 2), conv_backward_im2col),
        "sigmoid": (sigmoid, (_rand(rng, 3, 4) * 3,), (0,), sigmoid_backward),
        "lstm_step": (
            lambda *a: lstm_step_forward(*a)[0],
            (xl, h0, _rand(rng, 2, 2), Wx, Wh, bl),
            (0, 1, 2, 3, 4, 5),
            lstm_step_backward,
        ),
    }


# finite differences along a few random directions per input (the hand-written backward is
# compared element by element): keeps the CUDA simulator's many forward runs short
FD = {"max_elements": 4, "directions": 3}
CASE_NAMES = ["conv_naive", "max_pool_naive", "conv_im2col", "sigmoid", "lstm_step"]


@pytest.mark.parametrize("name", CASE_NAMES)
def test_layer_gradient_matches_hand_written_backward_and_finite_differences(name, backend):
    rng = np.random.default_rng(0)
    fn, args, argnums, backward = _cases(rng)[name]
    out = fn(*args) if name in ("sigmoid", "lstm_step", "conv_im2col") else None
    compiled = bpir.compile(fn, backend=backend)
    got = compiled(*args)
    if out is not None:  # plain NumPy runs these unchanged: the forward must agree
        np.testing.assert_allclose(got, out, rtol=1e-10, atol=1e-12)
    dout = rng.standard_normal(np.shape(got))

    def loss(*a):
        return np.sum(fn(*a) * dout)

    grads = bpir.compile(bpir.grad(loss, argnums=argnums), backend=backend)(*args)
    if name == "lstm_step":
        expected = backward(dout, *args)
    else:
        expected = backward(dout, *(args[:2] if len(args) > 1 else args))
    for g, e in zip(grads, expected):
        np.testing.assert_allclose(g, e, rtol=1e-9, atol=1e-11)
    bpir.check_grad(fn, *args, backend=backend, argnums=argnums, **FD)


def test_naive_layers_agree_with_their_vectorised_forms():
    rng = np.random.default_rng(1)
    x, w, b = _rand(rng, 1, 2, 4, 4), _rand(rng, 2, 2, 3, 3), _rand(rng, 2)
    naive = bpir.compile(lambda *a: conv_forward_naive(*a, stride=1), backend="numpy")(x, w, b)
    np.testing.assert_allclose(naive, conv_forward_im2col(x, w, b), rtol=1e-12)
    xp = _rand(rng, 2, 2, 4, 4)
    pooled = bpir.compile(max_pool_forward_naive, backend="numpy")(xp)
    np.testing.assert_allclose(pooled, xp.reshape(2, 2, 2, 2, 2, 2).max(axis=(3, 5)))


@pytest.mark.parametrize("loss_fn", [softmax_loss, svm_loss], ids=["softmax", "svm"])
def test_losses_that_compute_dx_in_place(loss_fn, backend):
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal((4, 5)), rng.integers(0, 5, size=4)
    loss, dx = bpir.compile(loss_fn, backend=backend)(x, y)
    ref_loss, ref_dx = loss_fn(x, y)  # plain NumPy, the same code
    np.testing.assert_allclose(loss, ref_loss, rtol=1e-12)
    np.testing.assert_allclose(dx, ref_dx, rtol=1e-12, atol=1e-15)
    # the in-place dx is the function's own hand-written backward: bpir's gradient must agree
    g = bpir.compile(bpir.grad(lambda x, y: loss_fn(x, y)[0]), backend=backend)(x, y)
    np.testing.assert_allclose(g, ref_dx, rtol=1e-10, atol=1e-14)
    bpir.check_grad(lambda x, y: loss_fn(x, y)[0], x, y, backend=backend, **FD)


def test_lstm_over_time_fills_a_preallocated_output(backend):
    """Forward on every backend; its gradient (the step's is checked above) on numpy."""
    rng = np.random.default_rng(3)
    x, h0 = rng.standard_normal((2, 3, 3)), rng.standard_normal((2, 2))
    Wx, Wh, b = rng.standard_normal((3, 8)), rng.standard_normal((2, 8)), rng.standard_normal(8)
    h = bpir.compile(lstm_forward, backend=backend)(x, h0, Wx, Wh, b)
    prev_h, prev_c = h0, np.zeros_like(h0)
    for t in range(3):  # the same step on NumPy arrays, collected by hand
        prev_h, prev_c = lstm_step_forward(x[:, t], prev_h, prev_c, Wx, Wh, b)
        np.testing.assert_allclose(h[:, t], prev_h, rtol=1e-12)
    if backend == "numpy":
        bpir.check_grad(lstm_forward, x, h0, Wx, Wh, b, backend=backend, argnums=(0, 2, 3, 4))


def test_an_aliased_preallocated_output_says_to_create_it_like_a_traced_array():
    def rnn_keeping_a_second_name(x, w):
        out = np.zeros((x.shape[0], w.shape[0]))
        history = [out]  # the NumPy array is reachable from elsewhere: it cannot become traced
        for n in range(x.shape[0]):
            out[n] = w @ x[n]
        return out, history

    with pytest.raises(bpir.TraceError) as e:
        bpir.trace(rnn_keeping_a_second_name, np.ones((2, 3)), np.ones((4, 3)))
    msg = str(e.value)
    assert "writing a traced value" in msg and "np.zeros(shape, like=x)" in msg
    assert "test_realworld_numpy.py:" in msg and "control flow" not in msg
