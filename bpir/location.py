"""Source locations: the first stack frame outside bpir's own packages."""

from __future__ import annotations

import contextlib
import functools
import os
import sys
from contextvars import ContextVar

_OWN = tuple(
    os.path.dirname(os.path.abspath(p)) + os.sep
    for p in (__file__, os.path.join(os.path.dirname(__file__), "..", "frontends", "x"))
)
_override: ContextVar[str | None] = ContextVar("bpir_loc", default=None)


def user_location() -> str | None:
    """``file.py:LINE`` of the innermost caller that is user code (not bpir, numpy or stdlib)."""
    forced = _override.get()
    if forced is not None:
        return forced
    frame = sys._getframe(1)
    while frame is not None:
        fname = frame.f_code.co_filename
        if _is_user_file(fname):
            return f"{os.path.basename(fname)}:{frame.f_lineno}"
        frame = frame.f_back
    return None


@functools.lru_cache(maxsize=1024)
def _is_user_file(fname: str) -> bool:
    path = os.path.abspath(fname)
    library = f"{os.sep}numpy{os.sep}" in path or f"{os.sep}contextlib" in path or path.startswith("<frozen")
    return not path.startswith(_OWN) and not library


@contextlib.contextmanager
def at(loc: str | None):
    """Give every node created inside the block this location (used by autodiff and passes)."""
    token = _override.set(loc)
    try:
        yield
    finally:
        _override.reset(token)
