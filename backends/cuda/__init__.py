"""numba-cuda backend: generates ``@cuda.jit`` kernels (grid-stride elementwise, tree reductions,
tiled matmuls with fused epilogues) and a host driver that launches them on device-resident
arrays; runs on an NVIDIA GPU or on Numba's CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``).
``kernels`` writes kernel source, ``views`` strided index arithmetic for layout ops, ``layout``
the layout-op kernels, ``driver`` the host code, ``runtime`` launches and pools, ``blas`` cuBLAS."""
