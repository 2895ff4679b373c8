"""``bnp.dropout``: inverted dropout with a bpir.random key (traced or eager)."""

from __future__ import annotations

import numbers

import numpy as np

from bpir import random as bpir_random


def dropout(key, x, rate: float):
    """Zero each element of ``x`` with probability ``rate`` and scale the rest by
    1 / (1 - rate), so the expectation is unchanged; ``rate`` 0 returns ``x``. The mask is
    ``bpir.random.bernoulli(key, 1 - rate, x.shape)``, as Flax's Dropout draws it."""
    if isinstance(rate, bool) or not isinstance(rate, numbers.Real):
        raise TypeError(
            f"bpir.numpy.dropout: rate must be a Python float in [0, 1), got {type(rate).__name__}"
        )
    rate = float(rate)
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"bpir.numpy.dropout: rate must be in [0, 1), got {rate}")
    bpir_random.check_key("bpir.numpy.dropout", key)
    dtype = np.dtype(x.dtype) if hasattr(x, "dtype") else np.asarray(x).dtype
    if dtype.kind != "f":
        raise TypeError(f"bpir.numpy.dropout: x must be a floating-point array, got {dtype}")
    if rate == 0.0:
        return x
    keep = 1.0 - rate
    mask = bpir_random.bernoulli(key, keep, np.shape(x))
    return np.where(mask, x / dtype.type(keep), dtype.type(0))
