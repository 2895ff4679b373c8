"""A progress line on stderr for work that turns out slow: nothing is printed unless the work
takes longer than ``after`` seconds; then one line says what is being done, and one when it ends."""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Iterator


@contextlib.contextmanager
def slow_notice(what: str, after: float = 2.0, stream=None) -> Iterator[None]:
    """Announce ``what`` on stderr if it is still running after ``after`` seconds."""
    stream = stream or sys.stderr
    start = time.perf_counter()
    done = threading.Event()
    said = threading.Event()

    def notice():
        if not done.wait(after):
            said.set()
            print(f"bpir: {what} ...", file=stream, flush=True)

    watcher = threading.Thread(target=notice, daemon=True)
    watcher.start()
    try:
        yield
    finally:
        done.set()
        watcher.join()
        if said.is_set():
            print(f"bpir: {what}: done in {time.perf_counter() - start:.1f} s", file=stream, flush=True)
