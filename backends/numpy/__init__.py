"""NumPy backend: generates one readable Python function of NumPy calls per graph, executed
with ``exec`` of that source; elementwise results reuse dying buffers through ``out=``.
It is the reference every other backend is compared with. ``kernels`` holds the few helpers
(conv, pooling windows, erf, ...) the generated source calls as ``k.NAME``."""
