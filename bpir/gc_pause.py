"""Python's full (oldest-generation) garbage collections paused while bpir builds a function.

Building allocates hundreds of thousands of short-lived objects (graphs, generated source,
Numba's typing and lowering), and each time the allocation count trips the oldest
generation's threshold, CPython scans every object the process holds: after importing JAX and
Numba that is millions, 0.17-0.24 s a scan here. A second-process compile of the GRU step
spent 0.2 of its 0.6 s in one such scan, a serial Numba compile of it 2.3 of 16 s in six.
While paused, the young generations still collect as usual, so short-lived cycles are freed
(peak memory of that serial compile: +29 MB, against +55 MB with collection off altogether).

The thresholds are process state: nested and concurrent builds share one pause (a count under
a lock) and the first one's saved thresholds come back when the last one ends."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_NEVER = 1 << 30  # oldest-generation threshold: young collections between full ones
_lock = threading.Lock()
_state: dict = {"depth": 0, "saved": None}


@contextmanager
def full_collections_paused() -> Iterator[None]:
    """No full collection inside the block; the thresholds as they were after the last
    concurrent block ends."""
    with _lock:
        if _state["depth"] == 0:
            _state["saved"] = gc.get_threshold()
            young = _state["saved"][:2]
            gc.set_threshold(*young, _NEVER)
        _state["depth"] += 1
    try:
        yield
    finally:
        with _lock:
            _state["depth"] -= 1
            if _state["depth"] == 0:
                gc.set_threshold(*_state["saved"])
