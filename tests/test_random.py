"""bpir.random against jax.random (the oracle) for the same key data, eager and traced."""

from __future__ import annotations

import jax
import numpy as np
import pytest

import bpir

SEEDS = [0, 42, 2**33 + 7, -1]
SHAPES = [(), (7,), (3, 5)]
DTYPES = ["float32", "float64"]


def jax_key(seed):
    return jax.random.PRNGKey(seed)


@pytest.mark.parametrize("seed", SEEDS)
def test_key_and_split_equal_jax(seed):
    with jax.enable_x64(True):
        jk = jax_key(seed)
        k = bpir.random.key(seed)
        assert k.dtype == np.uint32 and k.shape == (2,)
        np.testing.assert_array_equal(k, np.asarray(jax.random.key_data(jk)))
        for num in (1, 2, 5):
            s = bpir.random.split(k, num)
            assert s.dtype == np.uint32 and s.shape == (num, 2)
            np.testing.assert_array_equal(s, np.asarray(jax.random.split(jk, num)))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_uniform_bernoulli_bit_identical_to_jax(shape, dtype):
    with jax.enable_x64(True):
        for seed in SEEDS:
            k, jk = bpir.random.key(seed), jax_key(seed)
            u = bpir.random.uniform(k, shape, dtype)
            ju = np.asarray(jax.random.uniform(jk, shape, dtype))
            assert u.dtype == ju.dtype and u.shape == ju.shape
            np.testing.assert_array_equal(u, ju)
            p = np.asarray(0.3, dtype)
            b = bpir.random.bernoulli(k, p, shape)
            np.testing.assert_array_equal(b, np.asarray(jax.random.bernoulli(jk, p, shape)))


# jax's normal is sqrt(2) * erfinv(u) with XLA's erfinv polynomial; u is bit-identical, the
# polynomial and log1p round differently (XLA contracts a*b+c into FMAs and has its own log1p;
# one ulp in log1p moves w - 3.125 by many ulps in float64, measured <= 3.7e-15 relative).
NORMAL_TOL = {"float32": 4e-7, "float64": 1e-14}


@pytest.mark.parametrize("dtype", DTYPES)
def test_normal_matches_jax(dtype):
    with jax.enable_x64(True):
        for seed in SEEDS:
            n = bpir.random.normal(bpir.random.key(seed), (20000,), dtype)
            jn = np.asarray(jax.random.normal(jax_key(seed), (20000,), dtype))
            assert n.dtype == jn.dtype
            np.testing.assert_allclose(n, jn, rtol=NORMAL_TOL[dtype], atol=NORMAL_TOL[dtype])


def test_bad_keys_name_the_argument():
    for bad in (np.zeros(2, np.int32), np.zeros(3, np.uint32), 0):
        with pytest.raises(TypeError, match="key must be a uint32\\[2\\]"):
            bpir.random.uniform(bad, (2,))
    with pytest.raises(TypeError, match="dtype"):
        bpir.random.normal(bpir.random.key(0), (2,), "int32")
