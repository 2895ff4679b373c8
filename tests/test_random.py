"""bpir.random against jax.random (the oracle) for the same key data, eager and traced on every
backend; bnp.dropout; np.random refused inside traces."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import threading

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import bpir
import bpir.numpy as bnp

SEEDS = [0, 42, 2**33 + 7, -1]
SHAPES = [(), (7,), (3, 5)]
DTYPES = ["float32", "float64"]
# jax's normal is sqrt(2) * erfinv(u) with XLA's erfinv polynomial; u is bit-identical. On the
# CPU, XLA contracts a*b+c into FMAs and has its own log1p, so the numpy, numba and numba-cuda
# backends (which round every op, with the C library's log1p) differ from it by a few ulps (one
# ulp of log1p moves w - 3.125 by many ulps in float64: measured <= 3.7e-15 relative). The same
# holds for uniform with a range other than [0, 1) (u * (max - min) + min: one FMA, one ulp).
CLOSE = {"float32": 4e-7, "float64": 1e-14}


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
def test_eager_uniform_bernoulli_bit_identical_to_jax(shape, dtype):
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


@pytest.mark.parametrize("dtype", DTYPES)
def test_eager_normal_and_range_close_to_jax(dtype):
    with jax.enable_x64(True):
        for seed in SEEDS:
            k, jk = bpir.random.key(seed), jax_key(seed)
            n = bpir.random.normal(k, (20000,), dtype)
            jn = np.asarray(jax.random.normal(jk, (20000,), dtype))
            assert n.dtype == jn.dtype
            np.testing.assert_allclose(n, jn, rtol=CLOSE[dtype], atol=CLOSE[dtype])
            u = bpir.random.uniform(k, (20000,), dtype, -2.0, 3.0)
            ju = np.asarray(jax.random.uniform(jk, (20000,), dtype, -2.0, 3.0))
            np.testing.assert_allclose(u, ju, rtol=0, atol=5 * np.finfo(dtype).eps)
            assert u.min() >= -2.0 and u.max() < 3.0


def _sampler(shape):
    def f(key, p32, p64):
        k1, k2 = bpir.random.split(key)
        out = {"split": bpir.random.split(key, 3), "k1": k1}
        for dt in DTYPES:
            out[f"unit_{dt}"] = bpir.random.uniform(key, shape, dt)
            out[f"normal_{dt}"] = bpir.random.normal(k2, shape, dt)
            out[f"range_{dt}"] = bpir.random.uniform(k1, shape, dt, -2.0, 3.0)
        out["bern32"] = bpir.random.bernoulli(key, p32, shape)
        out["bern64"] = bpir.random.bernoulli(k2, p64, shape)
        return out

    return f


@functools.lru_cache
def _jax_samples(seed, shape):
    """The oracle, one jit per shape (op-by-op dispatch would compile every call)."""

    def sample(key, p32, p64):
        k1, k2 = jax.random.split(key)
        out = {"split": jax.random.split(key, 3), "k1": k1}
        for dt in DTYPES:
            out[f"unit_{dt}"] = jax.random.uniform(key, shape, dt)
            out[f"normal_{dt}"] = jax.random.normal(k2, shape, dt)
            out[f"range_{dt}"] = jax.random.uniform(k1, shape, dt, -2.0, 3.0)
        out["bern32"] = jax.random.bernoulli(key, p32, shape)
        out["bern64"] = jax.random.bernoulli(k2, p64, shape)
        return out

    with jax.enable_x64(True):
        out = jax.jit(sample)(jax_key(seed), *_probabilities(shape))
        return {k: np.asarray(v) for k, v in out.items()}


def _probabilities(shape):
    return np.float32(0.3), np.full(shape, 0.7)


@pytest.mark.parametrize("shape", [(), (3, 43)])
def test_traced_equals_jax_on_every_backend(backend, shape):
    """Keys, split, uniform in [0, 1) and bernoulli: bit-identical to jax.random on every
    backend. Normal and ranged uniform: bit-identical to jax.random on the jax backend, and to
    bpir's eager (NumPy) result on the others; close to jax.random everywhere."""
    p32, p64 = _probabilities(shape)
    f = _sampler(shape)
    seed = 2**40 + 3
    key = bpir.random.key(seed)
    compiled = bpir.compile(f, backend=backend, example_args=(key, p32, p64))
    got = {k: np.asarray(v) for k, v in compiled(key, p32, p64).items()}
    want = _jax_samples(seed, shape)
    eager = f(key, p32, p64)
    for name, w in want.items():
        g = got[name]
        assert g.dtype == w.dtype and g.shape == w.shape, name
        if name.startswith(("normal", "range")) and backend != "jax":
            np.testing.assert_array_equal(g, eager[name], err_msg=name)
            tol = CLOSE[str(g.dtype)] if name.startswith("normal") else 5 * np.finfo(g.dtype).eps
            np.testing.assert_allclose(g, w, rtol=tol, atol=tol, err_msg=name)
        else:
            np.testing.assert_array_equal(g, w, err_msg=name)


def test_graph_prints_parses_and_verifies():
    def f(key, x):
        k1, _ = bpir.random.split(key)
        return bpir.random.normal(k1, x.shape, x.dtype) * x + bpir.random.uniform(bpir.random.key(3), (4,))

    g = bpir.trace(f, bpir.random.key(0), np.ones(4, np.float32))
    text = str(g)
    assert "random_split" in text and "random_uniform" in text and "u32[2]" in text
    assert str(bpir.parse(text)) == text


def test_gradient_flows_to_data_not_key(backend):
    key = bpir.random.key(1)

    def loss(x, key):
        return np.sum(bpir.random.normal(key, x.shape, x.dtype) * x**2)

    x = np.linspace(-1, 1, 6)
    grad = bpir.compile(bpir.grad(loss), backend=backend, example_args=(x, key))
    np.testing.assert_allclose(
        np.asarray(grad(x, key)), bpir.random.normal(key, (6,), "float64") * 2 * x, rtol=1e-12
    )


def test_bad_arguments_name_the_argument():
    for bad in (np.zeros(2, np.int32), np.zeros(3, np.uint32), 0, np.zeros((2, 2), np.uint32)):
        with pytest.raises(TypeError, match=r"key must be a uint32\[2\]"):
            bpir.random.uniform(bad, (2,))
    with pytest.raises(TypeError, match="dtype"):
        bpir.random.normal(bpir.random.key(0), (2,), "int32")
    with pytest.raises(ValueError, match="negative"):
        bpir.random.uniform(bpir.random.key(0), (2, -1))
    with pytest.raises(ValueError, match="num"):
        bpir.random.split(bpir.random.key(0), -1)
    with pytest.raises(ValueError, match="broadcast"):
        bpir.random.bernoulli(bpir.random.key(0), np.full(3, 0.5), (2,))
    with pytest.raises(TypeError, match="seed"):
        bpir.random.key(1.5)

    def traced_bad_key(k):
        return bpir.random.uniform(k, (2,))

    with pytest.raises(TypeError, match=r"key must be a uint32\[2\] array .*got int64\[2\]"):
        bpir.trace(traced_bad_key, np.zeros(2, np.int64))


# -- dropout ----------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_dropout_matches_flax_formula(dtype):
    key = bpir.random.key(9)
    x = np.arange(1.0, 61.0, dtype=dtype).reshape(6, 10)
    rate = 0.3
    with jax.enable_x64(True):
        # Flax draws bernoulli(key, 1 - rate): a Python float p samples in float32 (JAX's default)
        keep = jax.random.bernoulli(jax_key(9), np.float32(1.0 - rate), x.shape)
        want = np.asarray(jnp.where(keep, x / x.dtype.type(1.0 - rate), 0))
    got = bnp.dropout(key, x, rate)
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)
    assert bnp.dropout(key, x, 0.0) is x


def test_dropout_traced_gradient_is_mask_over_keep(backend):
    key, rate = bpir.random.key(4), 0.4
    x = np.linspace(-2, 2, 20).reshape(4, 5)
    w = np.arange(20.0).reshape(4, 5)

    def loss(x, key):
        return np.sum(bnp.dropout(key, x, rate) * w)

    grad = bpir.compile(bpir.grad(loss), backend=backend, example_args=(x, key))
    mask = bpir.random.bernoulli(key, 1.0 - rate, x.shape)
    np.testing.assert_allclose(np.asarray(grad(x, key)), mask * w / (1.0 - rate), rtol=1e-14)


def test_dropout_bad_arguments():
    key, x = bpir.random.key(0), np.ones(3)
    for rate in (-0.1, 1.0, 1.5, float("nan")):
        with pytest.raises(ValueError, match="rate"):
            bnp.dropout(key, x, rate)
    with pytest.raises(TypeError, match="rate"):
        bnp.dropout(key, x, "0.5")
    with pytest.raises(TypeError, match=r"dropout: key must be a uint32\[2\]"):
        bnp.dropout(np.zeros(2, np.int64), x, 0.5)
    with pytest.raises(TypeError, match="x must be a floating-point"):
        bnp.dropout(key, np.ones(3, np.int64), 0.5)


# -- np.random inside a trace -----------------------------------------------------------------

REFUSED = {
    "rand": lambda x: np.random.rand(*x.shape),
    "randn": lambda x: np.random.randn(3),
    "normal": lambda x: np.random.normal(size=x.shape),
    "uniform": lambda x: np.random.uniform(0, 1, x.shape),
    "binomial": lambda x: np.random.binomial(1, 0.5, x.shape),
    "choice": lambda x: np.random.choice(3, 3),
    "permutation": lambda x: np.random.permutation(3),
    "randint": lambda x: np.random.randint(0, 2, 3),
    "default_rng": lambda x: np.random.default_rng(0).random(3),
}


@pytest.mark.parametrize("name", list(REFUSED))
def test_numpy_random_in_trace_is_refused(name):
    def f(x):
        return x * REFUSED[name](x)

    with pytest.raises(bpir.TraceError, match="bpir.random") as e:
        bpir.trace(f, np.ones(3))
    assert "test_random.py:" in str(e.value)


def test_generator_methods_refused_and_numpy_random_unchanged_outside():
    bpir.trace(lambda x: x, np.ones(2))  # the wrappers exist from the first trace on
    rng = np.random.default_rng(5)
    assert isinstance(rng, np.random.Generator)
    np.testing.assert_array_equal(rng.random(4), np.random.Generator(np.random.PCG64(5)).random(4))
    for method in (lambda: rng.normal(size=3), lambda: rng.permutation(3), lambda: rng.binomial(1, 0.5, 3)):
        with pytest.raises(bpir.TraceError, match="bpir.random"):
            bpir.trace(lambda x, m=method: x * m(), np.ones(3))
    np.random.seed(0)
    first = np.random.rand(3)
    np.random.seed(0)
    np.testing.assert_array_equal(first, np.random.rand(3))


def test_other_threads_keep_numpy_random_while_tracing():
    started, done, got = threading.Event(), threading.Event(), []

    def worker():
        started.wait(10)
        got.append(np.random.default_rng(0).random(2))
        got.append(np.random.rand(2))
        done.set()

    def f(x):
        started.set()
        assert done.wait(10)
        return x * 2

    t = threading.Thread(target=worker)
    t.start()
    bpir.trace(f, np.ones(2))
    t.join()
    assert len(got) == 2 and got[0].shape == (2,)


# Runs without the CUDA simulator (which does not type like Numba): every random kernel of the
# numba-cuda backend compiles to PTX for sm_90; no GPU is needed (NVVM wheels).
PTX_SCRIPT = """
import json
try:
    from numba import cuda
    from numba.cuda.cudadrv import nvvm
    nvvm.NVVM()
except Exception as e:
    print(json.dumps({"skip": f"NVVM not importable: {e}"}))
    raise SystemExit(0)
import bpir
from bpir.backends.cuda import backend, runtime

def f(key):
    k1, k2 = bpir.random.split(key)
    return bpir.random.uniform(k1, (7,), "float32"), bpir.random.uniform(k2, (7,), "float64")

program = backend.generate(bpir.optimize(bpir.trace(f, bpir.random.key(0))))
ns = runtime.program_namespace(program)
exec(program.source, ns)
sizes = {k.name: len(cuda.compile_ptx(ns[k.name].py_func, k.signature(), cc=(9, 0))[0]) for k in program.kernels}
print(json.dumps({"compiled": sizes}))
"""


def test_cuda_random_kernels_compile_to_ptx():
    if "numba-cuda" not in bpir.backends():
        pytest.skip("numba-cuda not installed")
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    proc = subprocess.run(
        [sys.executable, "-c", PTX_SCRIPT], env=env, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    if "skip" in result:
        pytest.skip(result["skip"])
    names = sorted(result["compiled"])
    assert [n.split("_", 1)[1] for n in names] == ["random_split", "random_uniform", "random_uniform"]
    assert all(size > 0 for size in result["compiled"].values())
