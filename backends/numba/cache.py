"""Loading a generated kernel module's machine code from Numba's file cache without the target
refresh Numba does before every cache load.

That refresh imports every lowering registry of Numba (``numba.np.arraymath`` imports
``scipy.linalg`` when SciPy is installed): 0.25-0.3 s of the 0.36-0.40 s cache hit of the small MLP
step, though rebuilding a cached library needs only Numba's runtime (NRT). The kernels call no
Numba BLAS (contractions run in the driver through NumPy), so nothing they load depends on the
skipped registries. A cache miss still compiles through Numba's own pipeline, which refreshes
the target itself, and other Numba functions of the process are untouched."""

from __future__ import annotations

from types import ModuleType

from numba.core.caching import FunctionCache
from numba.core.dispatcher import Dispatcher
from numba.core.runtime import rtsys

# Numba internals this relies on; without them the kernels keep Numba's own loading.
_AVAILABLE = all(hasattr(FunctionCache, a) for a in ("_load_overload", "_guard_against_spurious_io_errors"))


class _RuntimeOnlyCache(FunctionCache):
    """Numba's file cache for one kernel, loading with only the runtime initialised."""

    def load_overload(self, sig, target_context):
        rtsys.initialize(target_context)
        with self._guard_against_spurious_io_errors():
            return self._load_overload(sig, target_context)
        return None  # the guard swallowed a spurious I/O error: compile instead


def load_without_refresh(module: ModuleType) -> None:
    """Give each cached ``@njit`` kernel of ``module`` the refresh-free cache loader."""
    if not _AVAILABLE:
        return
    for kernel in vars(module).values():
        if isinstance(kernel, Dispatcher) and type(kernel._cache) is FunctionCache:
            kernel._cache = _RuntimeOnlyCache(kernel.py_func)
