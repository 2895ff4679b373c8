"""Backends by name, imported only when used (bpir core never imports them eagerly)."""

from __future__ import annotations

import importlib
import importlib.util
import os
from typing import NamedTuple, Protocol, runtime_checkable


class BackendInfo(NamedTuple):
    """Where a backend lives, what it needs, and what it can do."""

    module: str
    deps: tuple[str, ...]
    takes_paths: bool = False  # compile_graph accepts in_paths/out_paths (argument-path options)
    compiles_on_first_call: bool = False  # a JIT underneath: AOT compiles run it once on zeros
    artifact_files: bool = False  # save_artifact/load_artifact: the artifact carries backend files


@runtime_checkable
class CompilesAhead(Protocol):
    """A compiled program that can build its machine code before the first call, without data
    (the jax backend's: lower and compile); ``Executable.warm_up`` uses it when present."""

    def compile_ahead(self) -> None: ...


BACKENDS = {
    "numpy": BackendInfo("bpir.backends.numpy.backend", ()),
    "numba": BackendInfo(
        "bpir.backends.numba.backend", ("numba",), compiles_on_first_call=True, artifact_files=True
    ),
    "numba-cuda": BackendInfo("bpir.backends.cuda.backend", ("numba.cuda",), compiles_on_first_call=True),
    "jax": BackendInfo(
        "bpir.backends.jax.backend",
        ("jax",),
        takes_paths=True,
        compiles_on_first_call=True,
        artifact_files=True,
    ),
}


def backend_module(name: str):
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; choose from {sorted(BACKENDS)}")
    module = BACKENDS[name].module
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        raise RuntimeError(f"backend {name!r} is not available here: {e}") from None


def available() -> list[str]:
    """Backends that can run here: code and dependencies importable, and for numba-cuda a GPU
    or Numba's CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``)."""
    out = []
    for name, (module, deps, *_) in BACKENDS.items():
        try:
            if importlib.util.find_spec(module) is None:
                continue
            if all(importlib.util.find_spec(d.split(".")[0]) is not None for d in deps):
                if name != "numba-cuda" or _cuda_usable():
                    out.append(name)
        except (ImportError, ValueError):
            continue
    return out


def installed() -> list[str]:
    """Backends whose code and dependencies are importable (whether or not they can run)."""
    return [
        name
        for name, (module, deps, *_) in BACKENDS.items()
        if importlib.util.find_spec(module) is not None
        and all(importlib.util.find_spec(d.split(".")[0]) is not None for d in deps)
    ]


def compiles_on_first_call(name: str) -> bool:
    """Whether ``name``'s code is built by a JIT on its first call (not under the CUDA simulator,
    which interprets kernels)."""
    if name == "numba-cuda" and os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
        return False
    return name in BACKENDS and BACKENDS[name].compiles_on_first_call


def _cuda_usable() -> bool:
    if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
        return True
    from numba import cuda

    return bool(cuda.is_available())
