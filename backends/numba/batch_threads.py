"""A batch split over threads: a serial ``@njit(nogil=True)`` library kernel called at once on
contiguous runs of samples, this thread taking the first run and a shared pool the others.

Numba's ``parallel=True`` would do the same inside one kernel, but it made the convolution
kernels 2.5-3x slower to compile here (conv forward 4 -> 10-12 s, weight gradient 4.5 -> 13 s).
Slices of a C-contiguous batch are C-contiguous, so every run calls the one compiled serial
kernel. The number of threads is Numba's (``NUMBA_NUM_THREADS``, by default the CPU count)."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numba

PARALLEL_WORK = 1 << 20  # below this many multiply-adds a call stays on one thread

_lock = threading.Lock()
_pool: list[ThreadPoolExecutor] = []  # created on first use; dropped in a forked child


def runs(nb: int, work: int, threshold: int = PARALLEL_WORK) -> list[tuple[int, int]]:
    """[start, stop) runs of a batch of ``nb`` samples, one per thread: one run when ``work``
    is below ``threshold`` (by default multiply-adds), where waking the other threads costs
    more than they save."""
    chunks = 1 if work < threshold else max(1, min(nb, numba.config.NUMBA_NUM_THREADS))
    return [(t * nb // chunks, (t + 1) * nb // chunks) for t in range(chunks)]


def each(call: Callable[[int, int, int], None], bounds: list[tuple[int, int]]) -> None:
    """``call(run, start, stop)`` for every run at once: the first here, the others on the pool."""
    if len(bounds) == 1:
        call(0, *bounds[0])
        return
    futures = [_executor().submit(call, t, a, b) for t, (a, b) in enumerate(bounds) if t]
    try:
        call(0, *bounds[0])
    finally:
        errors = [f.exception() for f in futures]  # waits for every run before returning
    for error in errors:
        if error is not None:
            raise error


def _executor() -> ThreadPoolExecutor:
    with _lock:
        if not _pool:
            workers = max(1, numba.config.NUMBA_NUM_THREADS - 1)
            _pool.append(ThreadPoolExecutor(workers, thread_name_prefix="bpir-batch"))
        return _pool[0]


os.register_at_fork(after_in_child=_pool.clear)  # the parent's threads do not exist in a child
