"""Result buffers reused across calls once the caller has let go of them.

A compiled function returns fresh-looking arrays, but allocating every result on every call
costs more than the work for small graphs (and ~0.1 ms per device allocation on a GPU). The
pool keeps the last few buffers per output and hands one out again only when nothing but the
pool refers to it or to its memory: a view or reshape the caller still holds keeps the buffer
out of reuse. A buffer's "holders" state (reference counts) is recorded when it is allocated,
while nobody else holds it, so the test does not depend on how many references a library keeps
internally; a state of None means "cannot tell", and such a buffer is never reused."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable


def numpy_holders(buf) -> tuple:
    return (sys.getrefcount(buf),)  # a NumPy view refers to its base array


class PerThread:
    """What one thread's calls reuse (a workspace, a result pool), made on its first call, so
    concurrent calls of one compiled function never share a buffer."""

    def __init__(self, make: Callable):
        self._make = make
        self._local = threading.local()

    def get(self):
        try:
            return self._local.value
        except AttributeError:
            value = self._local.value = self._make()
            return value


class ResultPool:
    """``get(k, shape, dtype)``: a buffer for output ``k`` that no caller holds. ``alloc`` makes
    a new one; ``holders(buf)`` counts what refers to ``buf`` and its memory."""

    def __init__(self, n: int, alloc: Callable, holders: Callable = numpy_holders, keep: int = 2):
        self.pools: list[list[list]] = [[] for _ in range(n)]
        self.alloc, self.holders, self.keep = alloc, holders, keep

    def get(self, k: int, shape, dtype):
        pool = self.pools[k]
        for entry in pool:
            buf, free = entry
            if free is not None and self.holders(buf) == free:
                return buf
        buf = self.alloc(shape, dtype)
        entry = [buf, None]
        pool.append(entry)
        entry[1] = self.holders(buf)
        if len(pool) > self.keep:
            pool.pop(0)
        return buf
