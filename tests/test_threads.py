"""Thread safety: one compiled training step called from many threads at once gives, bit for
bit, the results of sequential calls, and a result handed to a caller is never overwritten by a
later call (each thread keeps every result it got until the end)."""

from __future__ import annotations

import os
import threading

import numpy as np
import pytest

import bpir
from bpir.demo.models import init_mlp, mlp_batch, sgd_step

THREADS = 8
# calls per thread (BPIR_THREAD_CALLS raises it); the CUDA simulator runs calls one at a time
# and takes about a second for a training step, so it gets one step and a few small calls
CALLS = int(os.environ.get("BPIR_THREAD_CALLS", "50"))


def _calls(backend: str, simulated: int) -> int:
    return simulated if backend == "numba-cuda" else CALLS


SIZES = (12, 8, 5)
BATCH = 6


def _trajectory(step, params, batches):
    """Run ``step`` along a training trajectory; keep every result (losses and parameters)."""
    kept = []
    for x, labels in batches:
        loss, params = step(params, x, labels)
        kept.append((loss, params))
    return kept


def _flat(results):
    return [leaf for loss, params in results for leaf in [loss, *(params[k] for k in sorted(params))]]


def _batches(seed: int, calls: int):
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal((BATCH, SIZES[0])).astype(np.float32),
             rng.integers(0, SIZES[-1], BATCH)) for _ in range(calls)]  # fmt: skip


def test_training_steps_from_threads_match_sequential(backend):
    calls = _calls(backend, 1)
    x0, labels0 = mlp_batch(SIZES, BATCH)
    params0 = [init_mlp(SIZES, seed=t) for t in range(THREADS)]
    batches = [_batches(100 + t, calls) for t in range(THREADS)]
    step = bpir.compile(sgd_step, backend=backend, example_args=(params0[0], x0, labels0))

    expected = [_flat(_trajectory(step, params0[t], batches[t])) for t in range(THREADS)]

    got: list = [None] * THREADS
    errors: list = []
    start = threading.Barrier(THREADS)

    def work(t):
        try:
            start.wait()
            got[t] = _trajectory(step, params0[t], batches[t])
        except BaseException as e:  # reported by the main thread
            errors.append(e)

    _run_threads(work)
    assert not errors, errors
    wrong = 0
    for t in range(THREADS):
        leaves = _flat(got[t])
        assert len(leaves) == len(expected[t])
        wrong += sum(not np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(leaves, expected[t]))
    assert wrong == 0, f"{wrong} of {sum(map(len, expected))} results differ from sequential calls"


def test_result_held_by_caller_is_not_overwritten(backend):
    """Results kept across later calls from other threads keep their values."""
    calls = _calls(backend, 4)
    f = bpir.compile(lambda x: (np.tanh(x * 2.0) + 1.0, np.sum(x * x, axis=1)), backend=backend,
                     example_args=(np.zeros((4, 3), np.float32),))  # fmt: skip
    inputs = [[np.full((4, 3), t + i / 8, np.float32) for i in range(calls)] for t in range(THREADS)]
    held: list = [[] for _ in range(THREADS)]

    def work(t):
        for i, x in enumerate(inputs[t]):
            out = f(x)
            if i % 2 == 0:  # keep half; the others go back to the pool
                held[t].append((x, out))

    _run_threads(work)
    for t in range(THREADS):
        for x, (a, b) in held[t]:
            want_a, want_b = f(x)
            np.testing.assert_array_equal(np.asarray(a), np.asarray(want_a))
            np.testing.assert_array_equal(np.asarray(b), np.asarray(want_b))


def test_sequential_reference_is_deterministic(backend):
    """The bit-for-bit comparison is meaningful: two sequential runs agree exactly."""
    x0, labels0 = mlp_batch(SIZES, BATCH)
    step = bpir.compile(sgd_step, backend=backend, example_args=(init_mlp(SIZES), x0, labels0))
    a = _flat(_trajectory(step, init_mlp(SIZES), _batches(7, 2)))
    b = _flat(_trajectory(step, init_mlp(SIZES), _batches(7, 2)))
    assert all(np.array_equal(np.asarray(p), np.asarray(q)) for p, q in zip(a, b))


def test_conv_gradients_from_threads_match_sequential():
    """The numba conv kernels (``backends/numba/conv.py``) allocate their scratch per call:
    callers on many threads at once get the sequential bits."""
    if "numba" not in bpir.backends():
        pytest.skip("numba not installed")
    import bpir.numpy as bnp

    rng = np.random.default_rng(3)
    xs = [rng.standard_normal((8, 4, 32, 32)).astype(np.float32) for _ in range(THREADS)]
    w = rng.standard_normal((8, 4, 3, 3)).astype(np.float32)

    def loss(x, w):
        return np.sum(np.tanh(bnp.conv2d(x, w, padding=1)) ** 2)

    f = bpir.compile(bpir.grad(loss, argnums=(0, 1)), backend="numba", example_args=(xs[0], w))
    expected = [f(x, w) for x in xs]
    got: list = [None] * THREADS
    start = threading.Barrier(THREADS)

    def work(t):
        start.wait()
        got[t] = [f(xs[t], w) for _ in range(5)]

    _run_threads(work)
    for t in range(THREADS):
        for result in got[t]:
            for a, b in zip(result, expected[t]):
                np.testing.assert_array_equal(a, b)


def _run_threads(work) -> None:
    """``work(t)`` on THREADS threads at once; returns when all have ended."""
    threads = [threading.Thread(target=work, args=(t,)) for t in range(THREADS)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
