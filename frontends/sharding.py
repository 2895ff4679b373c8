"""``bnp.with_sharding_constraint``: pin a traced value's split over the device mesh (as
``jax.lax.with_sharding_constraint``); the IR op is ``sharding_constraint``."""

from __future__ import annotations

from .tracer import Tracer, active_trace, lift, wrap


def spec_attr(spec) -> tuple[str, ...]:
    """A PartitionSpec-like tuple (None | axis | tuple of axes per dimension) as the op's attribute."""
    if not isinstance(spec, (tuple, list)):
        raise TypeError(
            f"with_sharding_constraint: spec must be a tuple, one entry per dimension, got {spec!r}"
        )
    out = []
    for entry in spec:
        axes = () if entry is None else (entry,) if isinstance(entry, str) else entry
        if not isinstance(axes, (tuple, list)) or not all(isinstance(a, str) and a for a in axes):
            raise TypeError(
                f"with_sharding_constraint: spec entry {entry!r} is not None, an axis name or a tuple of them"
            )
        out.append(",".join(axes))
    return tuple(out)


def with_sharding_constraint(x, spec):
    """``x``, split over the mesh as ``spec`` says (jax backend with a mesh); the identity elsewhere
    and on plain arrays."""
    attr = spec_attr(spec)
    if isinstance(x, Tracer):
        return wrap(active_trace().builder.emit("sharding_constraint", lift(x), spec=attr))
    return x
