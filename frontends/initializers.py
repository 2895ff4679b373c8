"""Weight initializers taking a ``bpir.random`` key (Xavier/Glorot, He/Kaiming, normal, zeros).

Fans follow PyTorch's convention for the shapes bpir's layers use: a dense weight is
``(fan_in, fan_out)``; a conv weight is OIHW, fan_in = I*kh*kw and fan_out = O*kh*kw."""

from __future__ import annotations

import math

import numpy as np

from bpir import random as bpir_random


def fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight of ``shape``."""
    shape = tuple(shape)
    if len(shape) < 1:
        raise ValueError("initializers need a weight of rank >= 1, got a scalar shape ()")
    if len(shape) == 1:
        return shape[0], shape[0]
    if len(shape) == 2:
        return shape[0], shape[1]
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def glorot_uniform(key, shape, dtype="float32"):
    """U(-a, a) with a = sqrt(6 / (fan_in + fan_out)) (Glorot & Bengio, 2010)."""
    fan_in, fan_out = fans(shape)
    limit = math.sqrt(6.0 / (fan_in + fan_out))
    return bpir_random.uniform(key, tuple(shape), dtype, minval=-limit, maxval=limit)


def glorot_normal(key, shape, dtype="float32"):
    """N(0, 2 / (fan_in + fan_out)), untruncated (PyTorch's xavier_normal_)."""
    fan_in, fan_out = fans(shape)
    return normal(key, shape, dtype, stddev=math.sqrt(2.0 / (fan_in + fan_out)))


def he_uniform(key, shape, dtype="float32"):
    """U(-a, a) with a = sqrt(6 / fan_in), for ReLU layers (He et al., 2015)."""
    limit = math.sqrt(6.0 / fans(shape)[0])
    return bpir_random.uniform(key, tuple(shape), dtype, minval=-limit, maxval=limit)


def he_normal(key, shape, dtype="float32"):
    """N(0, 2 / fan_in), untruncated (PyTorch's kaiming_normal_)."""
    return normal(key, shape, dtype, stddev=math.sqrt(2.0 / fans(shape)[0]))


def normal(key, shape, dtype="float32", stddev: float = 0.01):
    """N(0, stddev**2)."""
    return bpir_random.normal(key, tuple(shape), dtype) * np.asarray(stddev, dtype)


def zeros(key, shape, dtype="float32"):
    """All zeros (the key is accepted so every initializer has one signature)."""
    return np.zeros(tuple(shape), dtype)


xavier_uniform, xavier_normal = glorot_uniform, glorot_normal
kaiming_uniform, kaiming_normal = he_uniform, he_normal
