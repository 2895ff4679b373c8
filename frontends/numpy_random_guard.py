"""``np.random`` inside a traced function is refused: its numbers would be drawn once, at trace
time, and frozen into the graph as constants (the same "random" mask on every call).

Design: nothing happens at import. When a trace starts, ``refusing_numpy_random`` (1) sets a
context variable for the tracing thread only and (2) the first time in the process, replaces
the functions of the ``numpy.random`` module (``rand``, ``normal``, ``default_rng``, ...) by thin
wrappers that raise ``TraceError`` while that variable is set and otherwise call the original.
Other threads, and this thread outside traces, see the original behaviour (one context-variable
read per call). Generators from the wrapped ``default_rng`` are a ``Generator`` subclass whose
sampling methods check the same variable.

Limits: a Generator or RandomState created before the first trace of the process (e.g. a
module-level ``rng = np.random.default_rng(0)``), ``np.random.RandomState(...)`` /
``np.random.Generator(...)`` built directly, and functions bound before the first trace
(``from numpy.random import rand``) are NumPy's own C methods, which cannot be intercepted:
their numbers are still frozen silently."""

from __future__ import annotations

import contextlib
import functools
import threading
from contextvars import ContextVar

import numpy as np

from bpir.errors import TraceError
from bpir.location import user_location

_tracing: ContextVar[bool] = ContextVar("bpir_tracing_numpy_random", default=False)
_install_lock = threading.Lock()
_installed = False
_KEEP = {"BitGenerator", "Generator", "RandomState", "SeedSequence", "MT19937", "PCG64",
         "PCG64DXSM", "Philox", "SFC64", "get_state", "set_state", "default_rng"}  # fmt: skip


def _refuse(what: str):
    loc = user_location()
    raise TraceError(
        f"{what} called inside a traced function{f' at {loc}' if loc else ''}: its numbers would be "
        "drawn once while tracing and frozen into the compiled graph (the same mask on every call). "
        "Use bpir.random with a key passed as an argument, e.g. "
        "mask = bpir.random.bernoulli(key, 0.5, x.shape), and bpir.random.split(key) for new keys."
    )


def _guarded(what: str, fn):
    @functools.wraps(fn)
    def guarded(*args, **kwargs):
        if _tracing.get():
            _refuse(what)
        return fn(*args, **kwargs)

    guarded.__bpir_unguarded__ = fn
    return guarded


class GuardedGenerator(np.random.Generator):
    """What the wrapped ``np.random.default_rng`` returns: a ``Generator`` whose methods refuse
    to run inside a trace."""


for _name in dir(np.random.Generator):
    _attr = getattr(np.random.Generator, _name)
    if not _name.startswith("_") and callable(_attr):
        setattr(GuardedGenerator, _name, _guarded(f"numpy.random.Generator.{_name}", _attr))


def _default_rng(seed=None):
    """``np.random.default_rng``, returning a ``GuardedGenerator``; refused inside a trace."""
    if _tracing.get():
        _refuse("np.random.default_rng")
    if isinstance(seed, np.random.Generator):
        return seed
    return GuardedGenerator(seed if isinstance(seed, np.random.BitGenerator) else np.random.PCG64(seed))


def _install() -> None:
    global _installed
    with _install_lock:
        if _installed:
            return
        for name in np.random.__all__:
            fn = getattr(np.random, name)
            if name in _KEEP or not callable(fn) or hasattr(fn, "__bpir_unguarded__"):
                continue
            setattr(np.random, name, _guarded(f"np.random.{name}", fn))
        _default_rng.__bpir_unguarded__ = np.random.default_rng
        np.random.default_rng = _default_rng
        _installed = True


def tracing_here() -> bool:
    """Is a trace running in this thread (or task)?"""
    return _tracing.get()


@contextlib.contextmanager
def refusing_numpy_random():
    """Inside the block (this thread or task only), ``np.random`` raises ``TraceError``."""
    _install()
    token = _tracing.set(True)
    try:
        yield
    finally:
        _tracing.reset(token)
