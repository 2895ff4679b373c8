"""Source locations: the first stack frame outside bpir's own packages."""

from __future__ import annotations

import contextlib
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
        full = os.path.abspath(fname)
        if not full.startswith(_OWN) and not _is_library(full):
            return f"{os.path.basename(fname)}:{frame.f_lineno}"
        frame = frame.f_back
    return None


def _is_library(path: str) -> bool:
    return f"{os.sep}numpy{os.sep}" in path or f"{os.sep}contextlib" in path or path.startswith("<frozen")


@contextlib.contextmanager
def at(loc: str | None):
    """Give every node created inside the block this location (used by autodiff and passes)."""
    token = _override.set(loc)
    try:
        yield
    finally:
        _override.reset(token)
