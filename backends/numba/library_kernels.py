"""The Numba backend's library kernels (convolution, pooling, random bits: the ``@njit``
functions of ``conv``, ``pool_tiles``, ``windows`` and ``random``) carried like generated kernels.

They are written by hand, not generated, and took 0.5-4.5 s each to compile here (the CNN's
conv and pool kernels about 9 s together), so a new machine must not compile them: their
machine code goes into the bpir cache and into artifacts in the same checked JSON + object file
format (``aot``) as the generated kernels', never through Numba's pickled cache. A library
module's machine code is named by its source text (the cache keeps it beside a stand-in file
holding that text; an artifact's index records its SHA-256), so code built from other text is
never loaded. A library kernel may therefore call only ``@njit`` functions of its own module,
either inlined or returning a value (those are not carried: their code is inside their
callers'); ``tests/test_numba_library.py`` checks both. The modules call their kernels through
``call``, so that a compiled function's first call notes the overloads an artifact must carry.
``STATS`` (``kernel_cache``'s) counts overloads ``library_loaded`` and ``library_compiled``."""

from __future__ import annotations

import hashlib
import importlib
import threading
from collections.abc import Iterable
from contextlib import contextmanager
from functools import cache
from types import ModuleType

from numba.core.compiler_lock import global_compiler_lock
from numba.core.registry import CPUDispatcher

from bpir import cache as disk

from . import kernel_cache

NAMES = tuple(f"{__package__}.{m}" for m in ("conv", "pool_tiles", "windows", "random"))
BACKEND = "numba-library"  # the cache's name prefix for their stand-in files
_WINDOWS = frozenset({"conv2d", "conv2d_input_grad", "conv2d_weight_grad", "max_pool2d", "max_pool2d_grad",
                      "avg_pool2d", "avg_pool2d_grad"})  # fmt: skip
_RANDOM = frozenset({"random_uniform", "random_split"})

_lock = threading.RLock()
_looked_up: set[str] = set()  # library modules whose cache files this process has read
_known: dict[str, set] = {}  # module -> (function, signature) loaded or stored by this process
_recording = threading.local()  # .used: the overloads called inside ``recording()``


def call(kernel: CPUDispatcher, *args) -> None:
    """Call a library kernel; inside ``recording()`` on this thread, note the overload it runs,
    so that an artifact carries the overloads its graph calls and no others. Inside
    ``standing_in()``, a kernel not yet compiled for these types is noted instead of run."""
    pending, used = getattr(_recording, "pending", None), getattr(_recording, "used", None)
    if pending is not None or used is not None:  # off the hot path: only first calls get here
        signature = tuple(kernel.typeof_pyval(a) for a in args)
        if pending is not None and signature not in kernel.overloads:
            pending.setdefault((kernel, signature), importlib.import_module(kernel.py_func.__module__))
            return
        if used is not None:
            used.add((kernel.py_func.__module__, kernel.py_func.__name__, signature))
    kernel(*args)


@contextmanager
def standing_in():
    """{(kernel, signature): module} of the library kernels the block called on this thread
    that have no machine code for those types yet: they are not run (their outputs keep what
    they held), so that ``compile_pool`` can share their compiling between processes."""
    _recording.pending = pending = {}
    try:
        yield pending
    finally:
        _recording.pending = None


def none_compiled(modules: list[ModuleType]) -> bool:
    """Have these library modules no compiled (or loaded) kernel at all in this process, as on
    a new machine? Then a first call will compile some: worth a stand-in run to share that."""
    return bool(modules) and not any(_overloads(m) for m in modules)


@contextmanager
def recording():
    """The set of (module, function, signature) of the library kernels called in the block on
    this thread."""
    outer = getattr(_recording, "used", None)
    _recording.used = used = set()
    try:
        yield used
    finally:
        _recording.used = outer
        if outer is not None:
            outer.update(used)


def modules_for(ops: Iterable[str]) -> list[ModuleType]:
    """The library modules whose kernels a graph with these ops calls."""
    ops = set(ops)
    names = ["windows", "conv", "pool_tiles"] if ops & _WINDOWS else []
    names += ["random"] if ops & _RANDOM else []
    return [importlib.import_module(f"{__package__}.{n}") for n in names]


def is_library(module: ModuleType) -> bool:
    return module.__name__ in NAMES


@cache
def source(name: str) -> str:
    """A library module's source text (what its machine code is named by)."""
    if name not in NAMES:
        raise ValueError(f"{name!r} is not one of bpir's library kernel modules")
    with open(importlib.import_module(name).__file__, encoding="utf-8") as fh:
        return fh.read()


def digest(name: str) -> str:
    """SHA-256 of a library module's text (``name``: one of ``NAMES``)."""
    return hashlib.sha256(source(name).encode()).hexdigest()


def dispatchers(module: ModuleType) -> dict[str, CPUDispatcher]:
    """The module's own compiled functions, by name (those inlined into their callers have no
    machine code of their own)."""
    return {
        name: f
        for name, f in vars(module).items()
        if isinstance(f, CPUDispatcher)
        and f.py_func.__module__ == module.__name__
        and f.targetoptions.get("inline", "never") == "never"
    }


def _overloads(module: ModuleType) -> set:
    with global_compiler_lock:  # a thread compiling one of them adds to its overloads
        return {(name, sig) for name, f in dispatchers(module).items() for sig in f.overloads}


def load_cached(modules: list[ModuleType]) -> None:
    """Give the modules' kernels the machine code the bpir cache holds for them (once per
    process and module); anything missing, unsealed or built elsewhere is compiled instead."""
    from bpir.manifest import ArtifactError

    from . import aot

    with _lock:
        for module in modules:
            if module.__name__ in _looked_up:
                continue
            _looked_up.add(module.__name__)
            stand_in = _stand_in(module)
            if stand_in is None:
                continue
            try:
                with open(disk.jit_file(stand_in, kernel_cache.INDEX), "rb") as fh:
                    raw = fh.read()
                with open(disk.jit_file(stand_in, kernel_cache.OBJECTS), "rb") as fh:
                    blob = fh.read()
            except OSError:  # never stored, or dropped as unsealed
                continue
            try:
                index = aot.read_index(raw, stand_in.__name__)
                if aot.fits(index):
                    with loading([module]):
                        aot.add_overloads(index, [module], blob, stand_in.__name__)
            except ArtifactError:  # sealed but not loadable here: compile (the first call rewrites)
                continue


@contextmanager
def loading(modules: list[ModuleType]):
    """Count the overloads the block loads into the modules' kernels as loaded, not compiled
    (and so not written to the cache again)."""
    with _lock:
        before = {m.__name__: _overloads(m) for m in modules}
        try:
            yield
        finally:
            for m in modules:
                loaded = _overloads(m) - before[m.__name__]
                if loaded:
                    kernel_cache.STATS["library_loaded"] += len(loaded)
                    _known.setdefault(m.__name__, set()).update(loaded)


def store_compiled(modules: list[ModuleType]) -> None:
    """Write to the bpir cache the machine code of every kernel of the modules once one was
    compiled in this process (counted), so the next process loads it; never raises."""
    from . import aot

    with _lock:
        for module in modules:
            have, known = _overloads(module), _known.setdefault(module.__name__, set())
            fresh = have - known
            if not fresh:
                continue
            known.update(fresh)
            kernel_cache.STATS["library_compiled"] += len(fresh)
            stand_in = _stand_in(module)
            if stand_in is None:
                continue
            index, blob, _ = aot.machine_code([module])
            disk.write_jit_file(stand_in, kernel_cache.INDEX, index.encode())
            disk.write_jit_file(stand_in, kernel_cache.OBJECTS, blob)
            disk.seal(stand_in)


def _stand_in(module: ModuleType) -> ModuleType | None:
    return disk.stand_in(source(module.__name__), BACKEND, kernel_cache.versions())
