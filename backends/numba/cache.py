"""Loading a generated kernel module's machine code from Numba's file cache without the target
refresh Numba does before every cache load.

That refresh imports every lowering registry of Numba (``numba.np.arraymath`` imports
``scipy.linalg`` when SciPy is installed): 0.25-0.3 s of the 0.36-0.40 s cache hit of the small MLP
step, though rebuilding a cached library needs only Numba's runtime (NRT). The kernels call no
Numba BLAS (contractions run in the driver through NumPy), so nothing they load depends on the
skipped registries. A cache miss still compiles through Numba's own pipeline, which refreshes
the target itself, and other Numba functions of the process are untouched."""

from __future__ import annotations

import weakref
from types import ModuleType

from numba.core.caching import FunctionCache
from numba.core.dispatcher import Dispatcher
from numba.core.runtime import rtsys

# Numba internals this relies on; without them the kernels keep Numba's own loading.
_AVAILABLE = all(hasattr(FunctionCache, a) for a in ("_index_key", "_guard_against_spurious_io_errors"))
_FIELDS = ("_enabled", "_impl", "_cache_file")  # set by FunctionCache.__init__
# library -> Numba's serialized form (object code and bitcode) of kernels loaded from the file
# cache, whose loaded libraries no longer hold their object code (for numba artifacts)
SERIALIZED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


class _RuntimeOnlyCache(FunctionCache):
    """Numba's file cache for one kernel, loading with only the runtime initialised."""

    def load_overload(self, sig, target_context):
        rtsys.initialize(target_context)
        with self._guard_against_spurious_io_errors():
            return self._load_keeping_object_code(sig, target_context)
        return None  # the guard swallowed a spurious I/O error: compile instead

    def _load_keeping_object_code(self, sig, target_context):
        """Numba's ``_load_overload``, remembering the loaded library's serialized form."""
        if not self._enabled:
            return None
        data = self._cache_file.load(self._index_key(sig, target_context.codegen()))
        if data is None:
            return None
        cres = self._impl.rebuild(target_context, data)
        SERIALIZED[cres.library] = data[0]
        return cres


def load_without_refresh(module: ModuleType) -> None:
    """Give each cached ``@njit`` kernel of ``module`` the refresh-free cache loader."""
    if not _AVAILABLE:
        return
    for kernel in vars(module).values():
        if isinstance(kernel, Dispatcher) and type(kernel._cache) is FunctionCache:
            loader = _RuntimeOnlyCache(kernel.py_func)
            if all(hasattr(loader, a) for a in _FIELDS):
                kernel._cache = loader
