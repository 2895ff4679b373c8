"""Numba CPU backend: generates a module of ``@njit`` loop kernels (one per fused group, parallel
when large) and a Python driver that calls them, BLAS for matmuls and NumPy for layout ops.
``loops`` writes the kernels, ``fastmath`` the vectorisable exp/tanh/sigmoid, ``cache`` loads
cached machine code without Numba's registry refresh."""
