"""The op set. Importing this package registers every op in ``bpir.registry.OPS``."""

from . import (  # noqa: F401
    contraction,
    elementwise,
    fused,
    layout,
    linalg,
    math,
    nn,
    random,
    reduction,
    scan,
    sharding,
    source,
)
