"""``bpir.numpy`` (import as bnp): what NumPy has no function for. Each works on traced values
(recording IR) and on plain NumPy arrays (computing eagerly), with PyTorch's conventions."""

from __future__ import annotations

import numpy as np

from bpir.registry import get_op
from bpir.types import dtype_name, is_float

from .tracer import Tracer, active_trace, lift, wrap


def _traced(*xs) -> bool:
    return any(isinstance(x, Tracer) for x in xs)


def _eager(op: str, *arrays, **attrs) -> np.ndarray:
    """``op`` on plain NumPy arrays: its reference implementation (``OpDef.impl``)."""
    return get_op(op).impl(*(np.asarray(a) for a in arrays), **attrs)


def _pair(v) -> tuple[int, int]:
    return (int(v), int(v)) if np.isscalar(v) else tuple(int(d) for d in v)


def sigmoid(x):
    if _traced(x):
        v = lift(x)
        if not is_float(v.dtype):
            v = active_trace().builder.cast(v, "f64")
        return wrap(active_trace().builder.sigmoid(v))
    x = np.asarray(x)
    return 1 / (1 + np.exp(-x))


def relu(x):
    return np.maximum(x, 0)


def stop_gradient(x):
    """``x``, with a zero gradient (as ``jax.lax.stop_gradient``)."""
    if _traced(x):
        return wrap(active_trace().builder.stop_gradient(lift(x)))
    return x


def logsumexp(x, axis=None, keepdims=False):
    # the max shift only guards exp against overflow; its gradient cancels, so none is taken
    m = stop_gradient(np.max(x, axis=axis, keepdims=True))
    out = np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m
    if not keepdims:
        out = np.squeeze(out, axis=axis) if axis is not None else np.reshape(out, ())
    return out


def softmax(x, axis=-1):
    e = np.exp(x - stop_gradient(np.max(x, axis=axis, keepdims=True)))
    return e / np.sum(e, axis=axis, keepdims=True)


def log_softmax(x, axis=-1):
    return x - logsumexp(x, axis=axis, keepdims=True)


def one_hot(labels, num_classes: int, dtype="float32"):
    if _traced(labels):
        return wrap(
            active_trace().builder.one_hot(lift(labels), num_classes=num_classes, dtype=dtype_name(dtype))
        )
    labels = np.asarray(labels)
    return (labels[..., None] == np.arange(num_classes)).astype(dtype)


def cross_entropy(logits, labels):
    """Mean over the batch of -log_softmax(logits)[i, labels[i]] (integer labels).

    Labels outside [0, num_classes): on NumPy arrays a ValueError naming the first one; in a
    traced or compiled function (where labels are only known at run time) the loss, and the
    gradient rows of those samples, are NaN on every backend."""
    num_classes = np.shape(logits)[-1]
    if not _traced(labels):
        _check_labels(np.asarray(labels), num_classes)
    logp = log_softmax(logits, axis=-1)
    if not _traced(labels):
        picked = np.take_along_axis(logp, np.expand_dims(labels, -1), axis=-1)
        return -np.mean(picked)
    valid = (labels >= 0) & (labels < num_classes)
    safe = np.where(valid, labels, 0)  # an in-range gather on every backend
    picked = np.take_along_axis(logp, np.expand_dims(safe, -1), axis=-1)
    marker = np.where(valid, 1.0, np.nan).astype(picked.dtype)  # NaN marks an out-of-range label
    return -np.mean(picked * np.expand_dims(marker, -1))


def _check_labels(labels: np.ndarray, num_classes: int) -> None:
    if labels.dtype.kind not in "iu":
        raise TypeError(f"cross_entropy: labels must be integers, got {labels.dtype}")
    bad = (labels < 0) | (labels >= num_classes)
    if bad.any():
        i = tuple(int(k) for k in np.argwhere(bad)[0])
        raise ValueError(f"cross_entropy: labels{list(i)} = {labels[i]} is outside [0, {num_classes})")


def conv2d(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    attrs = dict(stride=_pair(stride), padding=_pair(padding), dilation=_pair(dilation), groups=int(groups))
    if _traced(x, w):
        from .tracer import result_dtype

        dt = result_dtype(x, w)
        out = wrap(active_trace().builder.conv2d(lift(x, dt), lift(w, dt), **attrs))
    else:
        out = _eager("conv2d", x, w, **attrs)
    if b is not None:
        out = out + np.reshape(b, (1, -1, 1, 1))
    return out


def _pool(kind, x, kernel_size, stride, padding):
    attrs = dict(kernel=_pair(kernel_size), stride=_pair(stride if stride is not None else kernel_size),
                 padding=_pair(padding))  # fmt: skip
    if _traced(x):
        return wrap(active_trace().builder.emit(kind, lift(x), **attrs))
    return _eager(kind, x, **attrs)


def max_pool2d(x, kernel_size, stride=None, padding=0):
    return _pool("max_pool2d", x, kernel_size, stride, padding)


def avg_pool2d(x, kernel_size, stride=None, padding=0):
    """Padding counts in the divisor (PyTorch's count_include_pad=True)."""
    return _pool("avg_pool2d", x, kernel_size, stride, padding)
