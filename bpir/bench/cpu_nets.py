"""The CNN and GRU training steps of ``bpir bench cpu``: bpir's Numba, NumPy and JAX backends
against ``jax.jit`` of the same model written by hand (``bpir.bench.nets``), timed round-robin
after their outputs agree, and each backend's compile time in a fresh process with an empty
bpir cache (cold) and in a second process sharing that cache (warm)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from functools import partial

import bpir
from bpir.bench import nets
from bpir.bench.timing import interleaved_medians

BACKENDS = ("numba", "numpy", "jax")
PEERS = ("bpir numba", "bpir numpy", "bpir jax", "jax.jit")


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
    """One row per model: median ms of each peer and the numba / jax.jit ratio."""
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
        check_agreement(name, [peer() for peer in peers], exact_peers=3)
        t = interleaved_medians(peers, rounds=rounds, per_round=per_round)
        rows.append([name, *(f"{s * 1e3:.3f} ms" for s in t), f"{t[0] / t[3]:.2f}", f"jax {t[2] / t[3]:.2f}"])
    return rows


COLD = """
import sys, time
model, backend = sys.argv[1:3]
t0 = time.perf_counter()
import bpir
from bpir.bench import cpu_nets
from bpir.bench.timing import block
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
    call; imports excluded), fresh process with an empty bpir cache, then a second process
    sharing the cache. jax.jit keeps no disk cache here: its second process compiles again."""
    rows = []
    for model in NAMES:
        row = [f"{model.upper()} step"]
        for backend in (*BACKENDS, "jax.jit"):
            with tempfile.TemporaryDirectory(prefix="bpir_bench_cache_") as cache:
                env = {**os.environ, "BPIR_CACHE_DIR": cache}
                runs = [
                    subprocess.run([sys.executable, "-c", COLD, model, backend], env=env, capture_output=True,
                                   text=True, check=True)
                    for _ in range(2)
                ]  # fmt: skip
            cold, warm = (float(run.stdout.split()[-1]) for run in runs)
            row.append(f"{cold:.2f} / {warm:.2f} s")
        rows.append(row)
    return rows
