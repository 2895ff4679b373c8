"""What only the Numba backend does: loop kernels in a cached module (a second process compiles
nothing; a corrupt cache is rebuilt), exact float32, the polynomial float32 math, and a
workspace that never overwrites results already returned."""

from __future__ import annotations

import glob
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from conftest import assert_close

import bpir
from bpir.demo.models import chain, init_mlp, mlp_batch, sgd_step

pytest.importorskip("numba")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

PROGRAM = textwrap.dedent("""
    import sys
    import numpy as np, bpir
    from bpir.demo.models import chain, init_mlp, mlp_batch, sgd_step
    p = init_mlp([6, 8, 3]); x, l = mlp_batch([6, 8, 3], 5)
    f = bpir.compile(sgd_step, backend="numba", example_args=(p, x, l))
    loss, _ = f(p, x, l)
    big = np.linspace(-4, 4, 1 << 21, dtype=np.float32)  # large enough for a parallel loop
    g = bpir.compile(chain, backend="numba", example_args=(big,))
    chained = g(big)
    from bpir.backends.numba.kernel_cache import STATS
    dispatchers = f._current().run.kernel_modules + g._current().run.kernel_modules
    misses, hits = STATS["compiled"], STATS["loaded"]
    chain_error = float(np.max(np.abs(chained - chain(big.astype(np.float64)))))
    registries = "numba.np.arraymath" in sys.modules
    print(repr(float(loss)), repr(chain_error), registries, len(dispatchers), misses, hits)
""")


def run_in_fresh_process(cache_dir: str) -> tuple[float, float, bool, int, int, int]:
    env = {**os.environ, "BPIR_CACHE_DIR": cache_dir, "PYTHONPATH": ROOT}
    out = subprocess.run([sys.executable, "-c", PROGRAM], env=env, capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-3000:]
    loss, chain_error, registries, n, misses, hits = out.stdout.split()[-6:]
    return float(loss), float(chain_error), registries == "True", int(n), int(misses), int(hits)


def test_a_second_process_compiles_nothing(tmp_path):
    first = run_in_fresh_process(str(tmp_path))
    second = run_in_fresh_process(str(tmp_path))
    assert first[3] > 0 and first[4] == first[3]  # every kernel compiled once
    assert first[1] < 1e-6  # the chain, parallel loop included, matches float64 NumPy
    assert second[:2] == first[:2]
    assert second[4] == 0 and second[5] == second[3]  # every kernel loaded from the disk cache
    assert first[2] and not second[2]  # loading imports none of Numba's lowering registries


def test_a_corrupt_cache_is_rebuilt_not_trusted(tmp_path):
    want = run_in_fresh_process(str(tmp_path))[0]
    cached = [p for p in glob.glob(str(tmp_path / "**" / "*"), recursive=True) if os.path.isfile(p)]
    assert any(p.endswith(".py") for p in cached) and any(
        p.endswith((".objects.json", ".objects.bin")) for p in cached
    )
    for path in cached:
        with open(path, "wb") as fh:
            fh.write(b"garbage")
    loss, _, _, n, misses, _ = run_in_fresh_process(str(tmp_path))
    assert loss == want and misses == n


def test_float32_stays_float32_in_the_loops(tmp_path, monkeypatch):
    monkeypatch.setenv(
        "BPIR_CACHE_DIR", str(tmp_path)
    )  # compiled here: cached code has no LLVM IR to inspect
    x = np.linspace(-2, 2, 64, dtype=np.float32).reshape(8, 8)
    f = bpir.compile(lambda x: (x * 0.5 + 1.0) * x - 3.0, backend="numba", example_args=(x,))
    y = f(x)
    assert y.dtype == np.float32
    kernels = f._current().run.kernels
    (sig,) = kernels.fused_1.signatures
    assert all("float32" in str(t) for t in sig)
    assert " double" not in kernels.fused_1.inspect_llvm(sig), "a float64 operation crept into a float32 loop"


def test_results_are_not_overwritten_by_the_next_call():
    params = init_mlp([6, 8, 3])
    x, labels = mlp_batch([6, 8, 3], 5)
    f = bpir.compile(sgd_step, backend="numba", example_args=(params, x, labels))
    loss1, new1 = f(params, x, labels)
    kept = {k: v.copy() for k, v in new1.items()}
    f(new1, x * 2, labels)
    for k in kept:
        np.testing.assert_array_equal(new1[k], kept[k])


def test_result_buffers_are_reused_only_once_the_caller_lets_go():
    x = np.linspace(-1, 1, 1000, dtype=np.float32)
    f = bpir.compile(chain, backend="numba", example_args=(x,))
    addresses = set()
    for _ in range(4):
        y = f(x)
        addresses.add(y.__array_interface__["data"][0])
        del y
    assert len(addresses) == 1  # dropped results: one buffer, no page faults per call
    a, b = f(x), f(x)
    view = a[:10]
    del a
    c = f(x)
    assert not np.shares_memory(view, c) and not np.shares_memory(b, c)
    assert_close(c, chain(x), "float32")  # the suite's float32 tolerance


def test_source_is_one_readable_module():
    x = np.ones((4, 4), np.float32)
    f = bpir.compile(chain, backend="numba", example_args=(x,))
    src = f.source
    assert src.count("@njit(parallel=") == 1 and "def fused_1(in0, out0):" in src
    assert "tanh_f32(" in src and "exp_f32(" in src  # float32 math without libm calls
    assert "def chain(x):" in src and "kernels.fused_1(x, v0)" in src


def test_reductions_over_inner_axes_after_a_kept_one():
    """Sum and max over (0, 2, 3) keeping axis 1 (a conv bias gradient's shape): the inner
    axes reduce into a scalar, then into the kept position; NaN still wins the max."""

    def f(x, y):
        g = x * y
        return g, np.sum(g, axis=(0, 2, 3)), np.max(g, axis=(0, 2, 3)), np.sum(g, axis=(0, 2), keepdims=True)

    rng = np.random.default_rng(0)
    x, y = (rng.standard_normal((3, 5, 4, 6)).astype(np.float32) for _ in range(2))
    x[1, 2, 3, 4] = np.nan
    fn = bpir.compile(f, backend="numba", example_args=(x, y))
    assert "part0 = np.float64(0)" in fn.source
    for got, want in zip(fn(x, y), bpir.compile(f, backend="numpy", example_args=(x, y))(x, y)):
        assert_close(got, want, "float32")
    assert np.isnan(fn(x, y)[2][2]) and not np.isnan(fn(x, y)[2][[0, 1, 3, 4]]).any()


def test_nchw_elementwise_kernels_run_over_merged_dimensions():
    """A conv-style bias + relu over (N, C, H, W) loops over (N, C, H*W); SGD updates of a
    4-D weight, a non-contiguous 3-D weight and a bias merge to one dimension and share one
    kernel; a 2-D update and a reduction keep their dimensions. Results match NumPy's backend."""

    def step(x, b, w, w3, v, m):
        act = np.maximum(x + b.reshape(1, -1, 1, 1), 0.0)
        return act, w - 0.1 * w, w3 - 0.1 * w3, v - 0.1 * v, m - 0.1 * m, np.sum(x * x, axis=(0, 2, 3))

    rng = np.random.default_rng(0)
    args = (rng.standard_normal((2, 3, 4, 5)), rng.standard_normal(3), rng.standard_normal((3, 2, 3, 3)),
            rng.standard_normal((4, 6, 5)).transpose(2, 0, 1), rng.standard_normal(7), rng.standard_normal((4, 5)))  # fmt: skip
    args = tuple(a.astype(np.float32) for a in args)
    f = bpir.compile(step, backend="numba", example_args=args)
    src = f.source
    relu = src[src.index("x0 + x1") - 400 : src.index("x0 + x1")]
    assert "for i2 in range(n2):" in relu and "i3" not in relu and "in1[0, i1, 0]" in relu
    assert ".reshape((2, 3, 20))" in src and ".reshape((1, 3, 1))" in src
    updates = [line.split("(")[0].split(".")[1] for line in src.splitlines() if "kernels." in line]
    assert updates.count(updates[1]) == 3  # the 4-D, 3-D and 1-D updates: one kernel
    assert len(set(updates)) == 4  # relu, the shared update, the 2-D update, the reduction
    want = bpir.compile(step, backend="numpy", example_args=args)(*args)
    for got, expected in zip(f(*args), want):
        assert_close(got, expected, "float32")


F32_RANGE = np.concatenate([
    np.linspace(-120, 100, 400_001, dtype=np.float32),
    np.geomspace(1e-30, 1, 20_001, dtype=np.float32),
    -np.geomspace(1e-30, 1, 20_001, dtype=np.float32),
    np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 88.72, -103.9, 1e-45], np.float32),
    np.random.default_rng(0).standard_normal(1_000_000).astype(np.float32) * 3,
])  # fmt: skip
F64_RANGE = np.concatenate([
    np.linspace(-800, 800, 1_000_001),
    np.geomspace(1e-300, 1, 20_001),
    -np.geomspace(1e-300, 1, 20_001),
    np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 709.78, 709.79, -745.13, -745.14, -708.4, 5e-324]),
    np.random.default_rng(0).standard_normal(1_000_000) * 5,
    np.random.default_rng(1).uniform(-1, 1, 1_000_000),
])  # fmt: skip


def stable_sigmoid(x):
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1, e) / (1 + e)


@pytest.mark.parametrize(
    ("name", "reference", "max_ulps"),
    [
        ("exp_f32", np.exp, 1),
        ("tanh_f32", np.tanh, 1),
        ("sigmoid_f32", stable_sigmoid, 2),
        ("exp_f64", np.exp, 1),
        ("sigmoid_f64", stable_sigmoid, 2),
        ("tanh_f64", np.tanh, 3),
    ],
)
def test_vectorisable_math_error_bound(name, reference, max_ulps):
    """The bounds documented in backends/numba/fastmath.py, in ulps: float32 against the correctly
    rounded result (float64 NumPy rounded), float64 against NumPy."""
    from bpir.backends.numba import fastmath
    from numba import njit

    fn = getattr(fastmath, name)

    @njit(error_model="numpy")
    def evaluate(xs):
        out = np.empty_like(xs)
        for i in range(xs.shape[0]):
            out[i] = fn(xs[i])
        return out

    xs, bits = (F32_RANGE, np.int32) if name.endswith("f32") else (F64_RANGE, np.int64)
    got = evaluate(xs)
    with np.errstate(all="ignore"):
        want = reference(xs.astype(np.float64)).astype(xs.dtype)
    assert got.dtype == xs.dtype
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    ok = ~np.isnan(want)
    ulps = np.abs(got[ok].view(bits).astype(np.int64) - want[ok].view(bits).astype(np.int64))
    assert ulps.max() <= max_ulps, xs[ok][ulps.argmax()]
