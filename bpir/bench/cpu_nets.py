"""The CNN and GRU training steps of ``bpir bench cpu``: bpir's Numba, NumPy and JAX backends
against ``jax.jit`` of the same model written by hand (``bpir.bench.nets``), timed round-robin
after their outputs agree, and each backend's compile time in a fresh process with an empty
bpir cache (cold) and in a second process sharing that cache (warm)."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from functools import partial

import bpir
from bpir.bench import nets
from bpir.bench.timing import interleaved_medians

BACKENDS = ("numba", "numpy", "jax")
PEERS = ("bpir numba", "bpir numpy", "bpir jax", "jax.jit")
TIMING_COLUMNS = (*PEERS, "torch eager", "numba/jax", "numba/torch", "bpir jax/jax")


def _examples(model: str) -> tuple:
    if model == "cnn":
        return (nets.init_cnn(), *nets.cnn_batch())
    params = nets.init_gru()
    return (params, nets.init_adam(params), *nets.gru_batch())


def _steps(model: str):
    """(bpir step function, hand-written jax.jit step)."""
    jax_cnn, jax_gru = nets.jax_steps()
    return (nets.cnn_step, jax_cnn) if model == "cnn" else (nets.gru_step, jax_gru)


NAMES = {
    "cnn": "CNN step conv8-pool-conv16-pool-dense b64 1x28x28",
    "gru": "GRU step 2 layers x 8 steps b16 h32 + Adam",
}


def timing_rows(check_agreement, rounds: int, per_round: int) -> list[list[str]]:
    """One row per model: median ms of each peer (torch eager for the CNN when installed) and the
    numba / jax.jit and numba / torch ratios."""
    import jax

    rows = []
    for model, name in NAMES.items():
        example = _examples(model)
        step, jax_step = _steps(model)
        compiled = [bpir.compile(step, backend=b, example_args=example) for b in BACKENDS]
        with jax.enable_x64(True):  # int64 labels stay int64, as bpir keeps them
            dev = jax.device_put(example)
        peers = [partial(f, *example) for f in compiled[:2]] + [
            partial(compiled[2], *dev),
            partial(jax_step, *dev),
        ]
        torch_step = nets.torch_cnn_step() if model == "cnn" else None
        if torch_step is not None:
            peers.append(partial(torch_step, *example))
        check_agreement(name, [peer() for peer in peers], exact_peers=3)
        t = interleaved_medians(peers, rounds=rounds, per_round=per_round)
        torch_ms = f"{t[4] * 1e3:.3f} ms" if len(t) > 4 else "-"
        torch_ratio = f"{t[0] / t[4]:.2f}" if len(t) > 4 else "-"
        rows.append([name, *(f"{s * 1e3:.3f} ms" for s in t[:4]), torch_ms, f"{t[0] / t[3]:.2f}", torch_ratio,
                     f"jax {t[2] / t[3]:.2f}"])  # fmt: skip
    return rows


CONV_LAYERS = {"conv 1->8 3x3 pad 1, 64x1x28x28": (1, 28, 8), "conv 8->16 3x3 pad 1, 64x8x14x14": (8, 14, 16)}


def conv_rows(rounds: int = 6, per_round: int = 10) -> list[list[str]]:
    """Each CNN convolution's forward and weight gradient on bpir's Numba kernels, each against
    NumPy's float32 matmul of its im2col GEMM shape, i.e. OpenBLAS's rate for the same FLOPs:
    (O, C*9) @ (C*9, N*OH*OW) for the forward, (O, N*OH*OW) @ (N*OH*OW, C*9) for the gradient.
    The kernels run on one thread, so the pair is timed again with OpenBLAS held to one thread
    too (threadpoolctl; "-" without it)."""
    import numpy as np

    from bpir.backends.numba import windows

    rng, rows = np.random.default_rng(0), []
    attrs = dict(stride=(1, 1), padding=(1, 1), dilation=(1, 1), groups=1)
    for name, (c, hw, o) in CONV_LAYERS.items():
        x = rng.standard_normal((64, c, hw, hw)).astype(np.float32)
        w = rng.standard_normal((o, c, 3, 3)).astype(np.float32)
        dy = rng.standard_normal((64, o, hw, hw)).astype(np.float32)
        wm, cols = w.reshape(o, -1), rng.standard_normal((c * 9, 64 * hw * hw)).astype(np.float32)
        dym, cols_t = dy.transpose(1, 0, 2, 3).reshape(o, -1), np.ascontiguousarray(cols.T)
        peers = [partial(windows.conv2d, x, w, **attrs), partial(np.matmul, wm, cols),
                 partial(windows.conv2d_weight_grad, x, dy, kernel_hw=(3, 3), **attrs),
                 partial(np.matmul, dym, cols_t)]  # fmt: skip
        t = interleaved_medians(peers, rounds, per_round)
        t1 = _one_blas_thread(partial(interleaved_medians, peers, rounds, per_round))
        flops = 2 * wm.size * cols.shape[1]  # the same for both GEMMs
        for i, kind in enumerate(("forward", "weight gradient")):
            t_kernel, t_gemm = t[2 * i : 2 * i + 2]
            one = ["-", "-"] if t1 is None else [f"{flops / t1[2 * i + 1] / 1e9:.1f}", f"{t1[2 * i + 1] / t1[2 * i]:.2f}"]  # fmt: skip
            rows.append([f"{name} {kind}", f"{t_kernel * 1e3:.3f} ms", f"{flops / t_kernel / 1e9:.1f}",
                         f"{flops / t_gemm / 1e9:.1f}", f"{t_gemm / t_kernel:.2f}", *one])  # fmt: skip
    return rows


CONV_COLUMNS = ("time", "GFLOP/s", "im2col sgemm GFLOP/s", "of sgemm", "1-thread sgemm GFLOP/s", "of 1-thread")  # fmt: skip


def _one_blas_thread(timed: Callable[[], list[float]]) -> list[float] | None:
    """``timed()`` with OpenBLAS on one thread, or None without threadpoolctl."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return None
    with threadpool_limits(limits=1, user_api="blas"):
        return timed()


COLD = """
import sys, time
model, backend = sys.argv[1:3]
t0 = time.perf_counter()
import bpir
from bpir.bench import cpu_nets
from bpir.bench.timing import block
if backend != "jax.jit":  # the backend's own imports (Numba's, JAX's), as jax.jit's are
    import importlib
    importlib.import_module(f"bpir.backends.{backend}.backend")
example = cpu_nets._examples(model)
step, jax_step = cpu_nets._steps(model)
t1 = time.perf_counter()
if backend == "jax.jit":
    import jax
    with jax.enable_x64(True):
        dev = jax.device_put(example)
    block(jax_step(*dev))
else:
    f = bpir.compile(step, backend=backend, example_args=example)
    block(f(*example))
print(t1 - t0, time.perf_counter() - t1)
"""


def compile_rows() -> list[list[str]]:
    """Seconds from traced function to first result (trace, optimize, codegen, compile, first
    call) in three fresh processes sharing one bpir cache: a new machine (the cache empty), a
    new model (the cache holding only the numba backend's library kernels, as after any earlier
    conv net on this machine: XLA's own conv kernels come compiled in its wheel), a second
    process (the cache full). jax.jit keeps no disk cache here: it compiles every time. Imports
    (Python's, NumPy's, JAX's, Numba's, bpir's with the backend module) are excluded alike for
    every peer; the last row gives their median seconds per peer."""
    rows, imports = [], {}
    for model in NAMES:
        row = [f"{model.upper()} step"]
        for backend in (*BACKENDS, "jax.jit"):
            with tempfile.TemporaryDirectory(prefix="bpir_bench_cache_") as cache:
                env = {**os.environ, "BPIR_CACHE_DIR": cache}
                times = []
                for run in range(3):
                    if run == 1:
                        _keep_library_kernels(cache)
                    out = subprocess.run([sys.executable, "-c", COLD, model, backend], env=env, capture_output=True,
                                         text=True, check=True)  # fmt: skip
                    imported, seconds = map(float, out.stdout.split()[-2:])
                    times.append(seconds)
                    imports.setdefault(backend, []).append(imported)
            row.append(" / ".join(f"{t:.2f}" for t in times) + " s")
        rows.append(row)
    rows.append(["imports", *(f"{statistics.median(imports[b]):.2f} s" for b in (*BACKENDS, "jax.jit"))])
    return rows


def _keep_library_kernels(cache: str) -> None:
    """Delete from a bpir cache folder everything but the library kernels' files."""
    from bpir.backends.numba.library_kernels import BACKEND

    keep = "bpir_" + BACKEND.replace("-", "_")
    for folder in (cache, os.path.join(cache, "__pycache__")):
        for name in os.listdir(folder) if os.path.isdir(folder) else ():
            path = os.path.join(folder, name)
            if os.path.isfile(path) and not name.startswith(keep):
                os.remove(path)
