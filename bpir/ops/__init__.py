"""The op set. Importing this package registers every op in ``bpir.registry.OPS``."""

from . import contraction, elementwise, fused, layout, linalg, math, nn, reduction, scan, source  # noqa: F401
