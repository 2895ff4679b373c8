"""Timing for the benchmarks: medians over repeated calls after warm-up, in one process, so that
ratios between peers are fair on a noisy machine."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def block(result):
    """Wait for asynchronous (JAX) results so a timing covers the work, not the dispatch."""
    for leaf in result if isinstance(result, (tuple, list)) else [result]:
        if isinstance(leaf, dict):
            block(list(leaf.values()))
        elif hasattr(leaf, "block_until_ready"):
            leaf.block_until_ready()
    return result


def median_seconds(
    fn: Callable[[], object], repeats: int = 30, warmup: int = 3, budget_s: float = 20.0
) -> float:
    """Median wall time of ``fn()`` over ``repeats`` runs (fewer if ``budget_s`` runs out)."""
    for _ in range(warmup):
        block(fn())
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < repeats and (len(times) < 5 or time.perf_counter() - start < budget_s):
        t0 = time.perf_counter()
        block(fn())
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(c.rjust(w) if j else c.ljust(w) for j, (c, w) in enumerate(zip(r, widths))) for r in rows
    )
