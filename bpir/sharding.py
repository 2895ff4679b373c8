"""Sharding recipes for the jax backend: each returns the ``shardings={path: spec}`` dict that
``bpir.compile(fn, backend="jax", example_args=..., mesh={...}, shardings=...)`` takes.
Paths are the argument paths bpir prints (``p['W1']``); a spec has one entry per dimension
(None, a mesh axis name, or a tuple of axis names). XLA's SPMD partitioner adds the collectives."""

from __future__ import annotations

from collections.abc import Sequence

from .pytree import flatten, leaf_paths


def data_parallel(batch_args: Sequence[str], axis: str = "data") -> dict[str, tuple]:
    """Split the leading (batch) dimension of ``batch_args`` over ``axis``; parameters replicated,
    so the gradient is all-reduced over ``axis``."""
    return {name: (axis,) for name in batch_args}


def tensor_parallel_mlp(
    root: str, layers: Sequence[tuple[str, str]], axis: str = "model"
) -> dict[str, tuple]:
    """Megatron-style MLP: odd layers split by columns (their output features), even layers by
    rows (their input features), so each pair needs one all-reduce. ``layers`` lists each
    layer's (weight key, bias key) under the argument ``root``."""
    out = {}
    for i, (w, b) in enumerate(layers):
        if i % 2 == 0:
            out[f"{root}[{w!r}]"] = (None, axis)
            out[f"{root}[{b!r}]"] = (axis,)
        else:
            out[f"{root}[{w!r}]"] = (axis, None)
    return out


def tensor_parallel_attention(root: str, query: str, key: str, value: str, output: str,
                              axis: str = "model") -> dict[str, tuple]:  # fmt: skip
    """Multi-head attention split by heads: the q/k/v projections by columns (each device holds
    whole heads when the head count divides the axis), the output projection by rows."""
    return {f"{root}[{query!r}]": (None, axis), f"{root}[{key!r}]": (None, axis),
            f"{root}[{value!r}]": (None, axis), f"{root}[{output!r}]": (axis, None)}  # fmt: skip


def fully_sharded(root: str, tree, axis: str = "data", axis_size: int | None = None) -> dict[str, tuple]:
    """FSDP/ZeRO-3: every leaf of ``tree`` (parameters, or optimizer state shaped like them) split
    on its first dimension that ``axis_size`` divides, replicated when none does; XLA all-gathers
    a parameter where it is used and reduce-scatters its gradient."""
    leaves, treedef = flatten(tree)
    out = {}
    for path, leaf in zip(leaf_paths(treedef, root), leaves):
        shape = getattr(leaf, "shape", ())
        for dim, size in enumerate(shape):
            if size > 1 and (axis_size is None or size % axis_size == 0):
                out[path] = (None,) * dim + (axis,)
                break
    return out
