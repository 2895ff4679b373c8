"""Runtime of the CUDA backend: launch sizes from the device, the kernels' global names, and
the callable that moves arguments to the device, runs the driver and returns results."""

from __future__ import annotations

import contextlib
import math
import sys
import threading
import types
import warnings
from dataclasses import dataclass

import numpy as np
from numba import cuda
from numba import types as numba_types
from numba.core.errors import NumbaPerformanceWarning
from numba.np import numpy_support

from bpir.types import to_numpy_dtype

from ..result_pool import PerThread, ResultPool


@dataclass(frozen=True)
class Launch:
    """Launch geometry: elementwise threads/blocks, reduction block size and maximum number
    of chunks (first pass blocks per output), matmul tile edge."""

    threads: int
    blocks: int
    reduce_threads: int
    max_chunks: int
    tile: int


# The simulator runs every CUDA thread as a Python thread and polls barriers: tiny blocks keep
# it fast while still exercising grid-stride loops, shared memory, barriers and tree levels.
SIMULATOR = Launch(threads=4, blocks=2, reduce_threads=4, max_chunks=2, tile=4)


def simulating() -> bool:
    from numba import config

    return bool(config.ENABLE_CUDASIM)


def launch_config() -> Launch:
    """Sized from the current device: enough blocks to fill every SM a few times over; without
    a device (compile-only, e.g. PTX checks) an H100-like device is assumed."""
    if simulating():
        return SIMULATOR
    sms, max_threads = 132, 1024
    try:
        if cuda.is_available():
            dev = cuda.get_current_device()
            sms, max_threads = dev.MULTIPROCESSOR_COUNT, dev.MAX_THREADS_PER_BLOCK
    except cuda.CudaSupportError:
        pass
    threads = min(256, max_threads)
    return Launch(threads=threads, blocks=sms * 8, reduce_threads=threads, max_chunks=sms * 4, tile=16)


def kernel_globals() -> dict[str, object]:
    """Names the generated source uses: ``cuda``, ``math``, dtype casts (u64 too, for threefry),
    INF and NAN. Under the simulator casts are NumPy scalar types and ``math`` follows IEEE like the GPU (inf/nan
    instead of Python's OverflowError/ValueError)."""
    names = ("f16", "f32", "f64", "i32", "i64", "u32")
    if simulating():
        casts = {n: to_numpy_dtype(n).type for n in names} | {"u64": np.uint64}
        shim = types.SimpleNamespace(**{k: getattr(math, k) for k in dir(math) if not k.startswith("_")})
        for k in ("exp", "log", "log1p", "expm1", "tanh", "sqrt", "sin", "cos"):
            setattr(shim, k, getattr(np, k))
        mathmod = shim
    else:
        import numba

        casts = {n: getattr(numba.types, to_numpy_dtype(n).name) for n in names} | {"u64": numba.types.uint64}
        mathmod = math
    return {"cuda": cuda, "math": mathmod, "np": np, "INF": math.inf, "NAN": math.nan, **casts}


class Launcher:
    """A kernel bound to its grid and block. The first call goes through Numba's dispatcher,
    which compiles for the argument types; later calls launch that compiled kernel directly,
    skipping the dispatcher's per-call type resolution (the driver always passes the same
    types: flat C-contiguous device arrays of fixed dtypes). The simulator keeps the
    dispatcher path."""

    def __init__(self, dispatcher, griddim, blockdim):
        self.dispatcher, self.griddim, self.blockdim = dispatcher, griddim, blockdim
        self.configured = None
        self.kernel = None

    def __call__(self, *args) -> None:
        c = self.configured
        if self.kernel is not None:
            self.kernel.launch(args, c.griddim, c.blockdim, c.stream, c.sharedmem)
            return
        if c is None:
            with warnings.catch_warnings():  # small grids are deliberate (sized by the work)
                warnings.simplefilter("ignore", NumbaPerformanceWarning)
                c = self.configured = self.dispatcher[self.griddim, self.blockdim]
        c(*args)
        overloads = getattr(self.dispatcher, "overloads", None)
        if overloads is not None and len(overloads) == 1:
            self.kernel = next(iter(overloads.values()))


def _device_holders(buf) -> tuple | None:
    """What refers to a device result: the array, its memory pointer (reshapes share it), and
    Numba's count of owned views of the allocation (slices take one). Under the simulator the
    array wraps a NumPy array that views refer to. None if Numba's internals differ."""
    if simulating():
        return (sys.getrefcount(buf), sys.getrefcount(buf._ary))
    data = buf.gpu_data
    views = getattr(getattr(data, "_mem", None), "refct", None)
    return None if views is None else (sys.getrefcount(buf), sys.getrefcount(data), views)


def _lock_simulator_shared_arrays() -> None:
    """Work around a simulator race: ``FakeCUDAShared.array`` looks up and then stores the
    block's array without a lock, so two threads of one block can get different "shared"
    arrays (seen as rare wrong reduction results). Serialise it; the simulator only."""
    from numba.cuda.simulator import kernelapi

    shared = kernelapi.FakeCUDAShared
    if getattr(shared.array, "bpir_locked", False):
        return
    lock = threading.Lock()
    unlocked = shared.array

    def array(self, shape, dtype, alignment=None):
        if alignment is not None or shape == 0:
            return unlocked(self, shape, dtype, alignment)
        caller = sys._getframe(1)
        key = (caller.f_code.co_filename, caller.f_lineno)  # as the simulator keys them
        with lock:
            if key not in self._allocations:
                self._allocations[key] = np.empty(
                    shape, numpy_support.as_dtype(dtype) if isinstance(dtype, numba_types.Type) else dtype
                )
            return self._allocations[key]

    array.bpir_locked = True
    shared.array = array


_SIMULATOR_LOCK = threading.RLock()


@contextlib.contextmanager
def _simulator_section():
    """Under the simulator, one call at a time: it supports no concurrent kernel launches (one
    global kernel context). Its block manager busy-polls its threads at barriers: a short GIL
    switch interval makes each barrier cost microseconds instead of the default 5 ms."""
    if not simulating():
        yield
        return
    with _SIMULATOR_LOCK:
        old = sys.getswitchinterval()
        sys.setswitchinterval(1e-5)
        try:
            with np.errstate(all="ignore"):
                yield
        finally:
            sys.setswitchinterval(old)


def _is_device_array(x) -> bool:
    return cuda.is_cuda_array(x) if hasattr(cuda, "is_cuda_array") else hasattr(x, "copy_to_host")


def program_namespace(program) -> dict:
    """The globals the generated source runs in: kernel names, the launcher and the program's
    constants."""
    from .blas import CublasMatmul
    from .host import HostCall

    return {**kernel_globals(), **program.constants, "launcher": Launcher, "cublas_matmul": CublasMatmul,
            "host_call": lambda k: HostCall(*program.host_calls[k])}  # fmt: skip


def make_runner(program, graph):
    """The compiled callable: host arrays are copied in (once per call), device arrays are used
    in place; results are NumPy arrays, or device arrays when any argument was one."""
    if simulating():
        _lock_simulator_shared_arrays()
    namespace = program_namespace(program)
    exec(compile(program.source, f"<bpir-numba-cuda:{graph.name}>", "exec"), namespace)
    forward, workspace = namespace["forward"], namespace["workspace"]
    in_types = [v.type for v in graph.inputs]
    out_shapes = [v.shape for v in graph.outputs]
    n_results = len(program.outputs)
    per_thread = PerThread(lambda: (workspace(), ResultPool(n_results, cuda.device_array, _device_holders)))

    def run(*args):
        on_device = False
        flat = []
        for x, t in zip(args, in_types):
            if _is_device_array(x):
                on_device = True
                if not x.is_c_contiguous():
                    x = cuda.to_device(np.ascontiguousarray(x.copy_to_host()))
                flat.append(x.reshape(max(1, t.size)))
            else:
                host = np.ascontiguousarray(np.asarray(x, dtype=t.np_dtype)).reshape(max(1, t.size))
                flat.append(cuda.to_device(host))
        with _simulator_section():
            outs = forward(*per_thread.get(), *flat)
            if on_device:
                return tuple(o.reshape(s) if s else o for o, s in zip(outs, out_shapes))
            return tuple(o.copy_to_host().reshape(s) for o, s in zip(outs, out_shapes))

    return run
