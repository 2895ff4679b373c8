"""Content-addressed kernels: each distinct ``@njit`` loop kernel of a generated module lives in
its own cache module named by a hash of its text with the kernel's name replaced (header
included), so a kernel is compiled once per machine whatever model, module or position it
comes from. Two models sharing a kernel compile it once; a model re-traced with one changed
kernel recompiles only that one.

The files go through ``bpir.cache`` (0700 folder, owner checks, a module file is rewritten
when its text does not match its name's hash, Numba's cache files are loaded only under a
valid seal), so every safety property of the module cache holds per kernel. When the cache
cannot be used, kernels compile in memory (no Numba file cache), still once per process and
body. ``STATS`` counts, per process, kernels compiled, loaded from disk and reused from memory
(for tests and the compile progress line)."""

from __future__ import annotations

import re
import sys
import threading
from collections import Counter
from types import ModuleType, SimpleNamespace

import numba
import numpy as np

from bpir import cache

from .cache import load_without_refresh

KERNEL = "kernel"  # every cached kernel's name in its own module
BACKEND = "numba-kernel"  # the cache's name prefix for kernel modules
# a generated module: the header, then kernels each opened by this decorator after two blank lines
_KERNEL_START = re.compile(r"\n\n\n(?=@njit\(parallel=)")
_KERNEL_NAME = re.compile(r"^def (fused_\d+)\(", re.M)

STATS: Counter = Counter()  # "compiled", "loaded" (from disk), "reused" (already in this process)
_memory: dict[str, ModuleType] = {}  # kernels compiled in memory, by module name
_lock = threading.Lock()


def split(source: str) -> tuple[str, dict[str, str]]:
    """(header, {kernel name: kernel source with its name replaced by ``KERNEL``})."""
    header, *parts = _KERNEL_START.split(source)
    bodies = {}
    for part in parts:
        name = _KERNEL_NAME.search(part)
        if name is None:
            raise ValueError(f"generated kernel without a fused_N name:\n{part[:200]}")
        bodies[name.group(1)] = part.replace(f"def {name.group(1)}(", f"def {KERNEL}(", 1)
    return header, bodies


def _versions() -> str:
    return cache.versions_key(numba, np)


class Kernels(SimpleNamespace):
    """A generated module's kernels by name (``kernels.fused_3``), each from its own module."""


def load(source: str) -> tuple[Kernels, list[ModuleType]]:
    """The kernels of a generated module source, and their distinct modules (disk cache, or
    compiled in memory after a warning when the cache cannot be used).

    The header (the helpers every kernel may call) is a module of its own, named by its hash
    like the kernels; each kernel module imports it, so it runs once per process, not once
    per kernel."""
    header, bodies = split(source)
    versions = _versions()
    helpers = cache.module_name(header, BACKEND, versions)
    opening = f"import {helpers} as helpers\nfrom {helpers} import *  # noqa: F403\n\n\n"
    texts = {name: opening + body for name, body in bodies.items()}
    distinct = list(dict.fromkeys(texts.values()))
    modules = cache.source_modules([header, *distinct], BACKEND, versions)
    if modules is None:
        _memory_module(header, helpers)
        modules = [_memory_module(text) for text in distinct]
    else:
        modules = modules[1:]
        for m in modules:
            load_without_refresh(m)
    by_text = dict(zip(distinct, modules))
    kernels = Kernels(**{name: getattr(by_text[text], KERNEL) for name, text in texts.items()})
    return kernels, modules


def _memory_module(text: str, header: str | None = None) -> ModuleType:
    """``text`` run as a module without a file, once per process; importable by its name (the
    header, which the kernels import)."""
    name = header or cache.module_name(text, BACKEND, _versions())
    with _lock:
        module = _memory.get(name)
        if module is None:
            module = _memory[name] = cache.memory_module(text.replace("cache=True,", "cache=False,"), name)
            if header:
                sys.modules.setdefault(name, module)
        return module


def _misses(module: ModuleType) -> int:
    return sum(getattr(module, KERNEL).stats.cache_misses.values())


def _compiled(module: ModuleType) -> bool:
    return bool(getattr(module, KERNEL).overloads)


class FirstCall:
    """Tracks what the first call of a compiled function did to its kernels: counts them in
    ``STATS`` and seals the disk cache files of those it compiled."""

    def __init__(self, modules: list[ModuleType]):
        self.modules = modules
        self.before = [(_compiled(m), _misses(m)) for m in modules]

    def done(self) -> None:
        fresh = []
        for m, (was_compiled, misses) in zip(self.modules, self.before):
            if _misses(m) > misses:  # Numba compiled (a disk cache hit counts no miss)
                STATS["compiled"] += 1
                fresh.append(m)
            elif was_compiled:
                STATS["reused"] += 1
            else:
                STATS["loaded"] += 1
        # the header of those on disk (its bytecode file)
        helpers = {id(m.helpers): m.helpers for m in fresh if getattr(m, "__file__", None)}
        cache.seal_all(fresh + list(helpers.values()))
