"""Source locations: the first stack frame outside bpir's own packages, kept printable so that
a location can sit in ``loc(...)`` in the IR text and in comments of generated source."""

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
            return escape(f"{os.path.basename(fname)}:{frame.f_lineno}")
        frame = frame.f_back
    return None


@functools.lru_cache(maxsize=1024)
def _is_user_file(fname: str) -> bool:
    path = os.path.abspath(fname)
    library = f"{os.sep}numpy{os.sep}" in path or f"{os.sep}contextlib" in path or path.startswith("<frozen")
    return not path.startswith(_OWN) and not library


def is_clean(text: str) -> bool:
    """True when ``text`` can stand in one line of IR text or of a generated comment, inside
    ``loc(...)``: printable characters only (no control, format or line-separator character)
    and no closing parenthesis."""
    return text.isprintable() and ")" not in text


def escape(text: str) -> str:
    """``text`` with every character that ``is_clean`` refuses written as a Python-style
    escape (``\\r``, ``\\x29``, ``\\u2028``); clean text comes back unchanged."""
    if is_clean(text):
        return text
    return "".join(c if c.isprintable() and c != ")" else _escape_char(c) for c in text)


def _escape_char(c: str) -> str:
    code = ord(c)
    if c in "\t\n\r":
        return repr(c)[1:-1]
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


@contextlib.contextmanager
def at(loc: str | None):
    """Give every node created inside the block this location (used by autodiff and passes)."""
    token = _override.set(loc)
    try:
        yield
    finally:
        _override.reset(token)
