"""Backends: each subpackage turns a bpir ``Graph`` into code that runs, and sees nothing else.

- ``numpy/``: Python source of NumPy calls (the reference backend).
- ``numba/``: one ``@njit`` loop kernel per fused group plus a Python driver (CPU).
- ``cuda/``: ``@cuda.jit`` kernels plus a host driver (numba-cuda; GPU or simulator).
- ``jax/``: ``jax.numpy``/``jax.lax`` source under one ``jax.jit`` (XLA), and ``jax.export``.

Shared by them: ``codegen`` (the emitter and the decomposition of ops a backend lacks),
``array_api`` (the NumPy-style call table that numpy, numba and jax fill in), ``result_pool``
(result buffers reused only once the caller has dropped them)."""

import sys as _sys
import types as _types


class _CallablePackage(_types.ModuleType):
    """Importing a backend binds this package to the attribute ``bpir.backends``, where the public
    function ``bpir.backends()`` lives; calling the package gives the same answer as that function."""

    def __call__(self) -> list[str]:
        from bpir.backend_registry import available

        return available()


_sys.modules[__name__].__class__ = _CallablePackage
