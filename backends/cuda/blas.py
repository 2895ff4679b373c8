"""Large matmuls through cuBLAS when CuPy is importable and sees a GPU (DESIGN: "tiled kernels,
cuBLAS when available"); otherwise, and under the simulator, the tiled kernel does them.

The driver binds each such matmul once to its operand layouts (offset, shape, strides of the
views it reads). A call wraps the flat device buffers as CuPy arrays without copying and runs
``cupy.matmul`` into the output buffer on the default stream, the stream the kernels are
launched on, so it is ordered with them. CuPy's float32 matmul is true float32 (no TF32 unless
the user sets CUPY_TF32=1), like the tiled kernel."""

from __future__ import annotations

import importlib.util

import numpy as np

from .runtime import simulating

# Smaller products stay in the tiled kernel, which also applies a fused epilogue before its
# store and costs less host time per call than CuPy's matmul (H100: with 1 << 22 the small MLP
# step's two 128x784x128 products went to cuBLAS and the step took 0.70-0.73 ms, 0.64 without);
# above it cuBLAS wins by far (4096^3 float32: 2.72 ms against 19.1 ms tiled).
MIN_MACS = 1 << 24


def available() -> bool:
    if simulating() or importlib.util.find_spec("cupy") is None:
        return False
    import cupy

    try:
        return cupy.cuda.runtime.getDeviceCount() > 0
    except cupy.cuda.runtime.CUDARuntimeError:
        return False


def _wrap(cupy, ptr: int, size: int, layout, dtype):
    """A CuPy view of the device memory at ``ptr`` that owns nothing and keeps nothing alive
    (so result pooling still sees only the caller's references); it is used only during a call
    that received a live buffer at that address."""
    offset, shape, strides = layout
    item = dtype.itemsize
    mem = cupy.cuda.UnownedMemory(ptr, size * item, None)
    return cupy.ndarray(shape, dtype, cupy.cuda.MemoryPointer(mem, offset * item),
                        tuple(s * item for s in strides))  # fmt: skip


class CublasMatmul:
    """``out = a @ b`` for views ``a`` and ``b`` (offset, shape, strides in elements) of flat
    device buffers; ``out`` is a flat buffer holding the C-contiguous product. CuPy views are
    remembered by address and size (workspace slots, pooled results and the caller's parameters
    come back on every call), since wrapping costs more host time than launching the GEMM."""

    KEEP = 8  # wrapped buffers remembered per operand

    def __init__(self, a: tuple, b: tuple, out: tuple, dtype):
        import cupy

        self.cupy, self.dtype = cupy, np.dtype(dtype)
        whole = (0, out, tuple(int(np.prod(out[i + 1 :], dtype=np.int64)) for i in range(len(out))))
        self.layouts = (whole, a, b)
        self.wrapped: tuple[dict, ...] = ({}, {}, {})

    def _view(self, j: int, dev):
        key = (dev.device_ctypes_pointer.value, dev.size)
        view = self.wrapped[j].get(key)
        if view is None:
            if len(self.wrapped[j]) >= self.KEEP:
                self.wrapped[j].clear()
            view = self.wrapped[j][key] = _wrap(self.cupy, *key, self.layouts[j], self.dtype)
        return view

    def __call__(self, out, a, b) -> None:
        self.cupy.matmul(self._view(1, a), self._view(2, b), out=self._view(0, out))
