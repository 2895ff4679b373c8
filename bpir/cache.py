"""The on-disk compile cache: generated source modules stored as files named by a hash of
their text, the backend and the library versions, with the machine code a JIT built for them
beside them (the numba backend's object files, ``write_jit_file``), so a second process
compiles nothing.

The folder is ``$BPIR_CACHE_DIR`` or ``~/.cache/bpir``, created with mode 0700. A module file
whose content does not match its name's hash (corrupt, truncated, edited) is rewritten, never
imported as is. The JIT files of a module (``__pycache__/<module>.*``, bytecode included) are
loaded only if they match the SHA-256 seal recorded after the process that wrote them finished
its first call; anything unsealed, unknown or altered is deleted first, so it is recompiled.

The cache is an optimisation: a folder that cannot be created or written, is not a folder, is
owned by another user or is writable by group or others (and the same for its ``__pycache__``)
is not used: ``source_module`` returns None, the caller compiles in memory, and one warning per
cause and process says why. Failed writes leave no temporary files behind."""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import stat
import sys
import tempfile
import threading
import warnings
from types import ModuleType

_lock = threading.RLock()  # one thread at a time writes, checks, deletes or imports cache files
_warned: set[str] = set()


class CacheWarning(RuntimeWarning):
    """The disk cache cannot be used; bpir compiles in memory instead."""


def _warn(cause: str, path: str) -> None:
    """Warn once per process and cause (the cause names no path, so one broken folder warns once)."""
    if cause not in _warned:
        _warned.add(cause)
        warnings.warn(f"bpir cache {path!r}: {cause}; compiling in memory", CacheWarning, stacklevel=4)


def cache_dir() -> str:
    """The configured cache folder (not created, not checked: see ``usable_dir``)."""
    return os.environ.get("BPIR_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "bpir")


def _problem(path: str, follow: bool) -> str | None:
    """Why ``path`` is not a folder this user may trust and write, or None."""
    st = os.stat(path) if follow else os.lstat(path)
    if not stat.S_ISDIR(st.st_mode):
        return "is not a directory"
    if hasattr(os, "geteuid") and st.st_uid != os.geteuid():
        return "is owned by another user"
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return "is writable by group or others"
    if not _writable(path):
        return "is not writable"
    return None


def _writable(path: str) -> bool:
    return os.access(path, os.W_OK | os.X_OK)


def usable_dir() -> str | None:
    """The cache folder, created (0700) if missing, or None (warned) when it cannot be used."""
    path = cache_dir()
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
        problem = _problem(path, follow=True)
        pycache = os.path.join(path, "__pycache__")
        if problem is None and os.path.lexists(pycache):
            problem = _problem(pycache, follow=False)
            problem = problem and f"its __pycache__ {problem}"
    except (FileExistsError, NotADirectoryError):
        problem = "is not a directory"  # or a parent of it is not
    except OSError as e:
        problem = f"cannot be created or read ({type(e).__name__}: {e.strerror})"
    if problem is not None:
        _warn(problem, path)
        return None
    return path


def versions_key(*modules: ModuleType) -> str:
    from . import __version__

    parts = [f"bpir={__version__}", f"python={sys.version_info[:3]}"]
    parts += [f"{m.__name__}={getattr(m, '__version__', '?')}" for m in modules]
    return ";".join(parts)


def module_name(source: str, backend: str, versions: str) -> str:
    digest = hashlib.sha256(f"{backend}\n{versions}\n{source}".encode()).hexdigest()[:24]
    return f"bpir_{backend.replace('-', '_')}_{digest}"


def source_module(source: str, backend: str, versions: str) -> ModuleType | None:
    """Import ``source`` from a cache file (written atomically if missing or corrupt); None,
    after a warning, when the cache cannot be used (the caller compiles in memory)."""
    modules = source_modules([source], backend, versions)
    return None if modules is None else modules[0]


def source_modules(sources: list[str], backend: str, versions: str) -> list[ModuleType] | None:
    """``source_module`` for many sources at once (the folder checked and its ``__pycache__``
    listed once); None, after a warning, when the cache cannot be used."""
    with _lock:
        folder = usable_dir()
        if folder is None:
            return None
        listing = _Listing(folder)
        found: list[tuple[str, str]] = []
        try:
            for source in sources:
                name = module_name(source, backend, versions)
                path = os.path.join(folder, name + ".py")
                if name not in sys.modules:
                    if not _holds(path, source):
                        _write_atomic(path, source)
                    _drop_unsealed(path, listing)
                elif not _holds(path, source):
                    _write_atomic(path, source)
                found.append((name, path))
        except OSError as e:
            _warn(f"cannot be written ({type(e).__name__}: {e.strerror})", folder)
            return None
        return [sys.modules.get(name) or _import(name, path) for name, path in found]


def stand_in(source: str, backend: str, versions: str) -> ModuleType | None:
    """A module kept in the cache but never imported: ``source`` written to its file (if
    missing or corrupt) and its JIT files checked against their seal, so that ``jit_file``,
    ``write_jit_file`` and ``seal_all`` keep machine code for functions that live elsewhere
    (the numba backend's library kernels, named by their module's text). None, after a
    warning, when the cache cannot be used."""
    with _lock:
        folder = usable_dir()
        if folder is None:
            return None
        name = module_name(source, backend, versions)
        path = os.path.join(folder, name + ".py")
        try:
            if not _holds(path, source):
                _write_atomic(path, source)
            _drop_unsealed(path)
        except OSError as e:
            _warn(f"cannot be written ({type(e).__name__}: {e.strerror})", folder)
            return None
        module = ModuleType(name)
        module.__file__ = path
        return module


def _import(name: str, path: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sys.modules[name] = module
    return module


def memory_module(source: str, name: str) -> ModuleType:
    """``source`` run as a module that has no file (the cache's fallback)."""
    module = ModuleType(name)
    exec(compile(source, f"<bpir-memory:{name}>", "exec"), module.__dict__)
    return module


def jit_file(module: ModuleType, suffix: str) -> str | None:
    """Where a JIT keeps a file for ``module`` (its ``__pycache__``, named by the module's stem,
    so sealed and dropped with the module's other JIT files); None for a module in memory."""
    path = getattr(module, "__file__", None)
    if path is None:
        return None
    stem = os.path.splitext(os.path.basename(path))[0]
    return os.path.join(os.path.dirname(path), "__pycache__", stem + suffix)


def write_jit_file(module: ModuleType, suffix: str, data: bytes) -> None:
    """Write one of ``module``'s JIT files atomically (seal the module afterwards); a failure
    warns and never raises (the next process compiles again)."""
    path = jit_file(module, suffix)
    if path is None:
        return
    with _lock:
        try:
            os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
            _write_atomic(path, data)
        except OSError as e:
            _warn(f"cannot be written ({type(e).__name__}: {e.strerror})", os.path.dirname(path))


def _write_atomic(path: str, text: str | bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), suffix=".tmp")
    try:
        with os.fdopen(fd, "wb" if isinstance(text, bytes) else "w") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise


class _Listing:
    """The JIT files in a cache folder's ``__pycache__`` by module, listed once."""

    def __init__(self, folder: str):
        self.folder = os.path.join(folder, "__pycache__")
        try:
            self.names = os.listdir(self.folder)
        except FileNotFoundError:
            self.names = []

    def files(self, module_path: str) -> list[str]:
        stem = os.path.splitext(os.path.basename(module_path))[0] + "."
        return sorted(os.path.join(self.folder, f) for f in self.names if f.startswith(stem))


def _digest(path: str) -> str:
    with open(path, "rb") as fh:
        return hashlib.sha256(fh.read()).hexdigest()


def seal(module: ModuleType) -> None:
    """Record the hashes of the JIT files the module's compiled functions wrote; a failure
    warns (the next process recompiles: unsealed files are never loaded) and never raises."""
    seal_all([module])


def seal_all(modules: list[ModuleType]) -> None:
    """``seal`` for many modules (each folder's ``__pycache__`` listed once)."""
    paths = [p for p in (getattr(m, "__file__", None) for m in modules) if p is not None]
    if not paths:  # compiled in memory
        return
    with _lock:
        listings: dict[str, _Listing] = {}
        for path in paths:
            folder = os.path.dirname(path)
            listing = listings.get(folder) or listings.setdefault(folder, _Listing(folder))
            try:
                files = {os.path.basename(p): _digest(p) for p in listing.files(path)}
                _write_atomic(path + ".seal.json", json.dumps(files))
            except OSError as e:
                _warn(f"cannot be sealed ({type(e).__name__}: {e.strerror})", os.path.dirname(path))


def _drop_unsealed(module_path: str, listing: _Listing | None = None) -> None:
    try:
        with open(module_path + ".seal.json") as fh:
            sealed = json.load(fh)
    except (OSError, ValueError):
        sealed = {}
    files = (listing or _Listing(os.path.dirname(module_path))).files(module_path)
    if not isinstance(sealed, dict) or any(sealed.get(os.path.basename(p)) != _digest(p) for p in files):
        for p in files:
            os.remove(p)


def _holds(path: str, source: str) -> bool:
    try:
        with open(path) as fh:
            return fh.read() == source
    except (OSError, UnicodeDecodeError):
        return False
