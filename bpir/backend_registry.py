"""Backends by name, imported only when used (bpir core never imports them eagerly)."""

from __future__ import annotations

import importlib
import importlib.util

BACKENDS = {
    "numpy": ("backends.numpy_backend", ()),
    "numba": ("backends.numba_backend", ("numba",)),
    "numba-cuda": ("backends.cuda_backend", ("numba.cuda",)),
    "jax": ("backends.jax_backend", ("jax",)),
}


def backend_module(name: str):
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; choose from {sorted(BACKENDS)}")
    module, _ = BACKENDS[name]
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        raise RuntimeError(f"backend {name!r} is not available here: {e}") from None


def available() -> list[str]:
    """Backends whose code and dependencies are importable on this machine."""
    out = []
    for name, (module, deps) in BACKENDS.items():
        try:
            if importlib.util.find_spec(module) is None:
                continue
            if all(importlib.util.find_spec(d.split(".")[0]) is not None for d in deps):
                out.append(name)
        except (ImportError, ValueError):
            continue
    return out
