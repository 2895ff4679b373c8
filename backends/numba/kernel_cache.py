"""Content-addressed kernels: each distinct ``@njit`` loop kernel of a generated module lives in
its own cache module named by a hash of its text with the kernel's name replaced (header
included), so a kernel is compiled once per machine whatever model, module or position it
comes from. Two models sharing a kernel compile it once; a model re-traced with one changed
kernel recompiles only that one.

A compiled kernel's machine code is kept next to its module as object files and a JSON index
(``backends.numba.aot``'s format, the one numba artifacts carry), not in Numba's pickled file
cache: loading it reads JSON and hands the object files to LLVM, and no pickle is read. The
files go through ``bpir.cache`` (0700 folder, owner checks, a module file is rewritten when its
text does not match its name's hash, JIT files are loaded only under a valid seal), so every
safety property of the module cache holds per kernel. When the cache cannot be used, kernels
compile in memory, still once per process and body. ``STATS`` counts, per process, kernels
compiled, loaded from disk and reused from memory (for tests and the compile progress line)."""

from __future__ import annotations

import re
import sys
import threading
from collections import Counter
from types import ModuleType, SimpleNamespace

import numba
import numpy as np

from bpir import cache

KERNEL = "kernel"  # every cached kernel's name in its own module
BACKEND = "numba-kernel"  # the cache's name prefix for kernel modules
INDEX, OBJECTS = ".objects.json", ".objects.bin"  # a kernel's machine code, next to its module
# a generated module: the header, then kernels each opened by this decorator after two blank lines
_KERNEL_START = re.compile(r"\n\n+(?=@njit\(parallel=)")
_KERNEL_NAME = re.compile(r"^def (fused_\d+)\(", re.M)

# "compiled" (here or by a compile worker), "loaded" (from disk), "reused" (already in this
# process), "by_workers" (of those compiled, how many a compile worker did)
STATS: Counter = Counter()
_memory: dict[str, ModuleType] = {}  # kernels compiled in memory, by module name
_from_disk: set[str] = set()  # kernel modules given their machine code from disk, not yet counted
_elsewhere: set[str] = set()  # kernel modules compiled by a worker process, not yet counted
_sources: dict[str, str] = {}  # module name -> text, for kernels and headers loaded in this process
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
    if len(bodies) != len(_KERNEL_NAME.findall(source)):
        raise ValueError("generated kernels not each opened by @njit(parallel=...) after a blank line")
    return header, bodies


def versions() -> str:
    """The library versions machine code and cache names are keyed on."""
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
    key = versions()
    helpers = cache.module_name(header, BACKEND, key)
    opening = f"import {helpers} as helpers\nfrom {helpers} import *  # noqa: F403\n\n\n"
    # Numba's own file cache is not used: the machine code is kept by ``_store_machine_code``
    texts = {name: opening + body.replace("cache=True,", "cache=False,") for name, body in bodies.items()}
    distinct = list(dict.fromkeys(texts.values()))
    with _lock:
        _sources[helpers] = header
        _sources.update((cache.module_name(t, BACKEND, key), t) for t in distinct)
    modules = cache.source_modules([header, *distinct], BACKEND, key)
    if modules is None:
        _memory_module(header, helpers)
        modules = [_memory_module(text) for text in distinct]
    else:
        modules = modules[1:]
        for m in modules:
            if not getattr(m, KERNEL).overloads:
                _load_machine_code(m)
    by_text = dict(zip(distinct, modules))
    kernels = Kernels(**{name: getattr(by_text[text], KERNEL) for name, text in texts.items()})
    return kernels, modules


def source(module: ModuleType) -> str:
    """The text a kernel (or header) module of this process was made from."""
    return _sources[module.__name__]


def memory_header(text: str) -> ModuleType:
    """A header run in memory and importable by its name (a compile worker's)."""
    return _memory_module(text, cache.module_name(text, BACKEND, versions()))


def memory_kernel(text: str) -> ModuleType:
    """A kernel module run in memory under its content-addressed name, importable by it (a
    compile worker's: Numba gives a kernel's environment only to a module it can import)."""
    module = _memory_module(text)
    sys.modules.setdefault(module.__name__, module)
    return module


def compiled_elsewhere(modules: list[ModuleType]) -> None:
    """Mark kernels whose machine code a compile worker built for this first call: counted as
    compiled, and written to the disk cache like those compiled here."""
    with _lock:
        fresh = {m.__name__ for m in modules} - _elsewhere
        STATS["by_workers"] += len(fresh)
        _elsewhere.update(fresh)


def _load_machine_code(module: ModuleType) -> None:
    """Give a kernel the overloads whose machine code its sealed cache files hold, if any fit."""
    from bpir.manifest import ArtifactError

    from . import aot

    try:
        with open(cache.jit_file(module, INDEX), "rb") as fh:
            raw = fh.read()
        with open(cache.jit_file(module, OBJECTS), "rb") as fh:
            blob = fh.read()
    except OSError:  # never compiled, or dropped as unsealed: compile
        return
    try:
        index = aot.read_index(raw, module.__name__)
        if aot.fits(index):
            aot.add_overloads(index, [module], blob, module.__name__)
            with _lock:
                _from_disk.add(module.__name__)
    except ArtifactError:  # sealed, but not for this bpir: compile (the first call reseals)
        return


def _store_machine_code(module: ModuleType) -> None:
    """Write a compiled kernel's machine code next to its module (seal it afterwards)."""
    from . import aot

    index, blob, _ = aot.machine_code([module])
    cache.write_jit_file(module, INDEX, index.encode())
    cache.write_jit_file(module, OBJECTS, blob)


def _memory_module(text: str, header: str | None = None) -> ModuleType:
    """``text`` run as a module without a file, once per process; importable by its name (the
    header, which the kernels import)."""
    name = header or cache.module_name(text, BACKEND, versions())
    with _lock:
        module = _memory.get(name)
        if module is None:
            module = _memory[name] = cache.memory_module(text, name)
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
        """Under the module lock: first calls of two functions sharing kernels may end at once."""
        with _lock:
            fresh = []
            for m, (was_compiled, misses) in zip(self.modules, self.before):
                if _misses(m) > misses or m.__name__ in _elsewhere:  # Numba compiled, here or in a worker
                    _elsewhere.discard(m.__name__)
                    STATS["compiled"] += 1
                    fresh.append(m)
                elif m.__name__ in _from_disk or not was_compiled:  # its machine code was loaded
                    _from_disk.discard(m.__name__)
                    STATS["loaded"] += 1
                else:
                    STATS["reused"] += 1
            on_disk = [m for m in fresh if getattr(m, "__file__", None)]
            for m in on_disk:
                _store_machine_code(m)
            helpers = {id(m.helpers): m.helpers for m in on_disk}  # their header: its bytecode file
            cache.seal_all(on_disk + list(helpers.values()))
