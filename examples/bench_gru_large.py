"""The larger GRU training step of issue 18 (2 layers x 16 steps, batch 32, hidden 128, Adam), in
one process: bpir's numba and jax backends against the same step hand-written in ``jax.jit``;
losses checked to agree first, then timed round-robin (medians), with the compile time of each.

    python -m examples.bench_gru_large"""

from __future__ import annotations

import os
import time
from functools import partial

import jax
import numpy as np

import bpir
from bpir.bench import nets
from bpir.bench.timing import interleaved_medians

SIZE = {"steps": 16, "batch": 32, "hidden": 128}


def main() -> None:
    nets.GRU.update(SIZE)  # the bench module's GRU shape, read by its init and step functions
    p = nets.init_gru()
    st, (xs, ys) = nets.init_adam(p), nets.gru_batch()
    compiled = {}
    for backend in ("numba", "jax"):
        t0 = time.perf_counter()
        step = bpir.compile(nets.gru_step, backend=backend, example_args=(p, st, xs, ys))
        compiled[backend] = (step, time.perf_counter() - t0)
    (numba_step, numba_s), (jax_step, jax_s) = compiled["numba"], compiled["jax"]
    _, hand = nets.jax_steps()
    with jax.enable_x64(True):  # int64 labels stay int64, as bpir keeps them
        dev = jax.device_put((p, st, xs, ys))
    t0 = time.perf_counter()
    jax.block_until_ready(hand(*dev))
    hand_s = time.perf_counter() - t0
    losses = [float(np.asarray(out[0])) for out in (numba_step(p, st, xs, ys), jax_step(*dev), hand(*dev))]
    if max(losses) - min(losses) > 1e-4 * abs(losses[0]):
        raise SystemExit(f"the peers disagree: losses {losses}")
    peers = [partial(numba_step, p, st, xs, ys), partial(jax_step, *dev), partial(hand, *dev)]
    numba_t, jax_t, hand_t = interleaved_medians(peers, rounds=6, per_round=10)
    print(f"GRU 2x{SIZE['steps']} b{SIZE['batch']} h{SIZE['hidden']} + Adam step: numba {numba_t * 1e3:.2f} ms, "
          f"bpir jax {jax_t * 1e3:.2f} ms, jax.jit {hand_t * 1e3:.2f} ms "
          f"(numba/jax.jit {numba_t / hand_t:.2f}, bpir jax/jax.jit {jax_t / hand_t:.2f})")  # fmt: skip
    print(f"compile with example_args: numba {numba_s:.1f} s, bpir jax {jax_s:.1f} s; "
          f"jax.jit first call {hand_s:.1f} s; load average {os.getloadavg()[0]:.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
