"""The op set. Importing this package registers every op in ``bpir.registry.OPS``."""

from . import contraction, elementwise, fused, layout, nn, random, reduction, source  # noqa: F401
