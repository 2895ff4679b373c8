"""Timing for the benchmarks: medians over repeated calls after warm-up, in one process, so that
ratios between peers are fair on a noisy machine."""

from __future__ import annotations

import random
import statistics
import time


def block(result):
    """Wait for asynchronous (JAX) results so a timing covers the work, not the dispatch."""
    for leaf in result if isinstance(result, (tuple, list)) else [result]:
        if isinstance(leaf, (dict, tuple, list)):
            block(list(leaf.values()) if isinstance(leaf, dict) else list(leaf))
        elif hasattr(leaf, "block_until_ready"):
            leaf.block_until_ready()
    return result


def interleaved_medians(fns, rounds: int = 6, per_round: int = 5, budget_s: float = 30.0) -> list[float]:
    """Median seconds of each callable over ``rounds`` rounds (see ``interleaved_times``)."""
    return [statistics.median(ts) for ts in interleaved_times(fns, rounds, per_round, budget_s)]


def interleaved_times(fns, rounds: int = 6, per_round: int = 5, budget_s: float = 30.0) -> list[list[float]]:
    """Seconds of every timed call of each callable over ``rounds`` rounds; in each round every
    callable runs one untimed call (its threads wake, the previous peer's spinning threads
    settle), then ``per_round`` timed calls. Slow load drift hits all peers alike, while no peer
    is timed right after another's thread pool (OpenBLAS, XLA, Numba) was busy. Each round runs
    the peers in a different (seeded) order, so no peer always follows the same one: a peer that
    frees large buffers leaves the allocator in a state the next one pays for."""
    times: list[list[float]] = [[] for _ in fns]
    start = time.perf_counter()
    for r in range(rounds):
        if r >= 2 and time.perf_counter() - start > budget_s:
            break
        order = list(zip(fns, times))
        random.Random(r).shuffle(order)
        for fn, ts in order:
            block(fn())
            for _ in range(per_round):
                t0 = time.perf_counter()
                block(fn())
                ts.append(time.perf_counter() - t0)
    return times


def table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(c.rjust(w) if j else c.ljust(w) for j, (c, w) in enumerate(zip(r, widths))) for r in rows
    )
