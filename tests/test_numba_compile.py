"""How the Numba backend keeps compiling cheap: loop extents read from the arrays (one body
for kernels that differ only in shapes), slices read through windows of the sliced array (no
strided views, no slice ops left in the driver), and kernels compiled by worker processes
before the first call, with a silent fallback when a worker fails."""

from __future__ import annotations

import os
import sys
import time
import warnings

import numpy as np
import pytest
from conftest import assert_close

import bpir
from bpir import cache

pytest.importorskip("numba")
from bpir.backends.numba import compile_pool, kernel_cache  # noqa: E402


def twice(x, y):
    return np.tanh(x) * 2.0 + 1.0, np.tanh(y) * 2.0 + 1.0


def test_kernels_that_differ_only_in_shapes_share_one_body():
    x, y = np.linspace(-2, 2, 20, dtype=np.float32).reshape(4, 5), np.ones((6, 7), np.float32)
    f = bpir.compile(twice, backend="numba", example_args=(x, y))
    assert f.source.count("@njit(") == 1
    assert "range(n0)" in f.source and "range(4)" not in f.source
    for got, want in zip(f(x, y), twice(x, y)):
        assert_close(got, want, np.float32)


def gates(x, w):
    h = x @ w
    a, b, c = h[:, :3], h[:, 3:6], h[:, 6:9]
    return np.tanh(a) * b + c + h[:, ::3] + h[1:2, 3:6], a


def test_slices_are_read_through_windows_of_the_contiguous_array():
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((4, 5)).astype(np.float32), rng.standard_normal((5, 9)).astype(np.float32)
    f = bpir.compile(gates, backend="numba", example_args=(x, w))
    kernel, driver = f.source.split("# bpir generated code for func")
    for read in ("[i0, 3 + i1]", "[i0, 6 + i1]", "[i0, i1 * 3]", "[1, 3 + i1]"):
        assert read in kernel
    assert driver.count("= slice") == 1  # only the slice returned to the caller is made
    layouts = {t.layout for m in f._current().run.kernel_modules for sig in m.kernel.signatures for t in sig}
    assert layouts == {"C"}  # no strided view reaches a kernel
    want = bpir.compile(gates, backend="numpy", example_args=(x, w))(x, w)
    for got, ref in zip(f(x, w), want):
        assert_close(got, ref, np.float32)


def test_slice_windows_have_exact_gradients():
    def loss(x, w):
        out, a = gates(x, w)
        return np.sum(out * out) + np.sum(a)

    rng = np.random.default_rng(1)
    x, w = rng.standard_normal((4, 5)), rng.standard_normal((5, 9))
    bpir.check_grad(loss, x, w, backend="numba", argnums=(0, 1))


def chains(x, w):
    """Four kernels no fusion can merge (a matmul between each), constants unique to this test."""
    for scale in (1.0173, 1.0379, 1.0531, 1.0797):
        x = np.tanh(x * scale + 0.25) @ w
    return x


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("BPIR_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("BPIR_COMPILE_WORKERS", "1")
    monkeypatch.setattr(compile_pool, "MIN_PARALLEL_S", 0.0)  # workers even for four small kernels
    helping = compile_pool.Worker.help_finish

    def after_the_first_answer(worker):
        # this process would otherwise compile all four small kernels before the worker's
        # imports are done: wait for its first answer (or its end), so that its part is certain
        while worker.proc is not None and not worker.answers and worker.reader.is_alive():
            time.sleep(0.01)
        helping(worker)

    monkeypatch.setattr(compile_pool.Worker, "help_finish", after_the_first_answer)
    return tmp_path


def other_chains(x, w):
    """``chains`` with constants of its own: kernels no other test compiles."""
    for scale in (1.0211, 1.0423, 1.0617, 1.0859):
        x = np.tanh(x * scale + 0.25) @ w
    return x


def _compile_chains(dtype, fn=chains):
    x, w = np.linspace(-1, 1, 48).reshape(6, 8).astype(dtype), (np.eye(8) * 0.9).astype(dtype)
    before = dict(kernel_cache.STATS)
    f = bpir.compile(fn, backend="numba", example_args=(x, w))
    added = {k: kernel_cache.STATS[k] - before.get(k, 0) for k in ("compiled", "by_workers", "loaded")}
    want = fn(x.astype(np.float64), w.astype(np.float64))
    np.testing.assert_allclose(f(x, w), want, rtol=1e-5, atol=1e-5)
    return f, added


def test_a_worker_process_compiles_part_of_the_kernels(fresh_cache):
    f, added = _compile_chains(np.float32)
    modules = f._current().run.kernel_modules
    assert len(modules) == 4 and added["compiled"] == 4
    assert 1 <= added["by_workers"] < 4  # the worker took a share, this process the rest
    for m in modules:  # every kernel's machine code is in the disk cache, whoever compiled it
        assert os.path.exists(cache.jit_file(m, kernel_cache.INDEX))


def test_a_failing_worker_only_means_compiling_here(fresh_cache, monkeypatch):
    monkeypatch.setattr(compile_pool.Worker, "command", ["false"])
    _, added = _compile_chains(np.float64)  # other kernels than the float32 test's
    assert added["compiled"] == 4 and added["by_workers"] == 0


def test_this_process_compiles_what_a_silent_worker_has_not_answered(tmp_path, monkeypatch):
    """A worker that never answers costs no waiting: this process compiles its share too, from
    the end, and stops it once every kernel has machine code."""
    monkeypatch.setenv("BPIR_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("BPIR_COMPILE_WORKERS", "1")
    monkeypatch.setattr(compile_pool, "MIN_PARALLEL_S", 0.0)
    monkeypatch.setattr(
        compile_pool.Worker, "command", [sys.executable, "-c", "import time; time.sleep(120)"]
    )
    workers = []
    monkeypatch.setattr(compile_pool.Worker, "kill", lambda w, kill=compile_pool.Worker.kill: (workers.append(w), kill(w)))  # fmt: skip
    start = time.perf_counter()
    _, added = _compile_chains(np.float32, other_chains)
    assert added["compiled"] == 4 and added["by_workers"] == 0 and time.perf_counter() - start < 60
    assert workers and all(w.proc.poll() is not None for w in workers)  # stopped, not left running


def test_this_process_steals_the_kernels_a_worker_reaches_last(monkeypatch):
    """A worker compiles its generated kernels, then its library ones; ``help_finish`` takes
    from the end of ``share``, so ``share`` must be in that order whatever order it came in."""
    from bpir.backends.numba import pool_tiles

    monkeypatch.setattr(compile_pool.Worker, "command", ["true"])
    x, w = np.ones((2, 8)), np.eye(8)
    generated = bpir.compile(chains, backend="numba", example_args=(x, w))._current().run.kernel_modules[0]
    kernel = getattr(generated, kernel_cache.KERNEL)
    library = pool_tiles.max_pool_grad_2x2
    a = np.zeros((1, 1, 2, 2), np.int32)
    library_sig = tuple(library.typeof_pyval(v) for v in (a, a[:, :, :1, :1], a))
    worker = compile_pool.Worker(
        [(library, library_sig, pool_tiles), (kernel, kernel.signatures[0], generated)]
    )
    assert [m for _, _, m in worker.share] == [generated, pool_tiles]
    worker.kill()


def test_shares_start_with_the_workers_start_up_time():
    shares = compile_pool._partition([3.0, 1.0, 1.0, 1.0, 0.5], workers=1)
    assert sorted(k for share in shares for k in share) == [0, 1, 2, 3, 4]
    assert shares[0][0] == 0  # the longest kernel is compiled here, the worker still starting
    loads = [sum([3.0, 1.0, 1.0, 1.0, 0.5][k] for k in s) + (compile_pool.WORKER_START_S if p else 0)
             for p, s in enumerate(shares)]  # fmt: skip
    assert max(loads) - min(loads) <= 1.0


def padded(x, y, w):
    a = np.tanh(x @ w)  # a workspace buffer, read by the kernel after other buffers are made
    b = np.sin(x @ w) @ w
    p = np.pad(a, ((1, 0), (2, 3)), constant_values=1.5)
    return p * y + np.pad(b, ((0, 1), (0, 5))) + 1.0


def test_pads_are_read_through_with_their_fill_value():
    rng = np.random.default_rng(2)
    x, w = rng.standard_normal((3, 4)).astype(np.float32), rng.standard_normal((4, 4)).astype(np.float32)
    y = rng.standard_normal((4, 9)).astype(np.float32)
    f = bpir.compile(padded, backend="numba", example_args=(x, y, w))
    kernel, driver = f.source.split("# bpir generated code for func")
    assert "= pad" not in driver and "else np.float32(1.5)" in kernel
    want = bpir.compile(padded, backend="numpy", example_args=(x, y, w))(x, y, w)
    assert_close(f(x, y, w), want, np.float32)
    bpir.check_grad(padded, x.astype(np.float64), y.astype(np.float64), w.astype(np.float64),
                    backend="numba", argnums=(0, 2))  # fmt: skip


def test_workers_help_when_the_disk_cache_cannot_be_used(fresh_cache, monkeypatch):
    not_a_folder = fresh_cache / "a_file"
    not_a_folder.write_text("")
    monkeypatch.setenv("BPIR_CACHE_DIR", str(not_a_folder))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", cache.CacheWarning)  # once per process: maybe said before
        f, added = _compile_chains(np.float32)  # the kernels of the first worker test, in memory now
    assert not any(getattr(m, "__file__", None) for m in f._current().run.kernel_modules)  # in memory
    assert added["compiled"] == 4 and 1 <= added["by_workers"] < 4


WORKER_LIBRARY = """
import numpy as np
from bpir.backends.numba import compile_pool, kernel_cache, library_kernels, pool_tiles
x = np.arange(2 * 3 * 4 * 4, dtype=np.int32).reshape(2, 3, 4, 4)
dy = np.ones((2, 3, 2, 2), np.int32)
kernel = pool_tiles.max_pool_grad_2x2  # int32: a signature no graph compiles
signature = tuple(kernel.typeof_pyval(a) for a in (x, dy, x))
assert signature not in kernel.overloads
# the stand-in run notes a library kernel without machine code for its types, and skips it
dx = np.full_like(x, -7)
with library_kernels.standing_in() as pending:
    library_kernels.call(kernel, x, dy, dx)
assert pending == {(kernel, signature): pool_tiles} and (dx == -7).all()  # neither compiled nor run
assert signature not in kernel.overloads
compile_pool.Worker([(kernel, signature, pool_tiles)]).finish(timeout=120)
assert signature in kernel.overloads  # machine code from the worker, checked and loaded
assert kernel_cache.STATS["library_by_workers"] == 1 and kernel.stats.cache_misses[signature] == 0
dx = np.zeros_like(x)
library_kernels.call(kernel, x, dy, dx)
assert dx.sum() == dy.size  # every tile's cotangent stored once
print("ok")
"""


def test_a_worker_process_compiles_library_kernels(tmp_path):
    """On a new machine the library kernels (conv, pooling) are noted by the stand-in run and
    shared out like generated ones; in a fresh process, so that no earlier test compiled or
    cached the kernel."""
    import subprocess
    import sys

    env = {
        **os.environ,
        "BPIR_CACHE_DIR": str(tmp_path),
        "PYTHONPATH": os.path.dirname(os.path.dirname(__file__)),
    }
    out = subprocess.run([sys.executable, "-c", WORKER_LIBRARY], env=env, capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-3000:]
