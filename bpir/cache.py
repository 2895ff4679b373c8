"""The on-disk compile cache: generated source modules stored as files named by a hash of
their text, the backend and the library versions, so that a JIT's own file cache (Numba's
``cache=True``) can hold their machine code and a second process compiles nothing.

The folder is ``$BPIR_CACHE_DIR`` or ``~/.cache/bpir``. A module file whose content does not
match its name's hash (corrupt, truncated, edited) is rewritten, never imported as is. The
JIT's own files for a module (Numba's ``__pycache__/<module>.*`` index and data) are loaded
only if they match the SHA-256 seal recorded after the process that wrote them finished its
first call; anything unsealed, unknown or altered is deleted first, so it is recompiled."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import sys
import tempfile
from types import ModuleType


def cache_dir() -> str:
    path = os.environ.get("BPIR_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "bpir")
    os.makedirs(path, exist_ok=True)
    return path


def versions_key(*modules: ModuleType) -> str:
    from . import __version__

    parts = [f"bpir={__version__}", f"python={sys.version_info[:3]}"]
    parts += [f"{m.__name__}={getattr(m, '__version__', '?')}" for m in modules]
    return ";".join(parts)


def source_module(source: str, backend: str, versions: str) -> ModuleType:
    """Import ``source`` from a cache file (written atomically if missing or corrupt)."""
    digest = hashlib.sha256(f"{backend}\n{versions}\n{source}".encode()).hexdigest()[:24]
    name = f"bpir_{backend.replace('-', '_')}_{digest}"
    path = os.path.join(cache_dir(), name + ".py")
    if not _holds(path, source):
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), suffix=".tmp")
        with os.fdopen(fd, "w") as fh:
            fh.write(source)
        os.replace(tmp, path)
    if name in sys.modules:
        return sys.modules[name]
    _drop_unsealed(path)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sys.modules[name] = module
    return module


def _jit_files(module_path: str) -> list[str]:
    folder = os.path.join(os.path.dirname(module_path), "__pycache__")
    stem = os.path.splitext(os.path.basename(module_path))[0] + "."
    try:
        return sorted(os.path.join(folder, f) for f in os.listdir(folder) if f.startswith(stem))
    except FileNotFoundError:
        return []


def _digest(path: str) -> str:
    with open(path, "rb") as fh:
        return hashlib.sha256(fh.read()).hexdigest()


def seal(module: ModuleType) -> None:
    """Record the hashes of the JIT files the module's compiled functions wrote."""
    files = {os.path.basename(p): _digest(p) for p in _jit_files(module.__file__)}
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(module.__file__), suffix=".tmp")
    with os.fdopen(fd, "w") as fh:
        json.dump(files, fh)
    os.replace(tmp, module.__file__ + ".seal.json")


def _drop_unsealed(module_path: str) -> None:
    try:
        with open(module_path + ".seal.json") as fh:
            sealed = json.load(fh)
    except (OSError, ValueError):
        sealed = {}
    files = _jit_files(module_path)
    if not isinstance(sealed, dict) or any(sealed.get(os.path.basename(p)) != _digest(p) for p in files):
        for p in files:
            os.remove(p)


def _holds(path: str, source: str) -> bool:
    try:
        with open(path) as fh:
            return fh.read() == source
    except (OSError, UnicodeDecodeError):
        return False
