"""``trace``: run a Python function on tracers and record its Graph."""

from __future__ import annotations

import inspect
import numbers
import re
from dataclasses import dataclass

import numpy as np

from bpir.errors import TraceError
from bpir.ir import Graph
from bpir.pytree import TreeDef, flatten, leaf_paths, unflatten
from bpir.types import TensorType, dtype_name

from . import context
from .numpy_random_guard import refusing_numpy_random
from .tracer import Tracer, lift


@dataclass
class Traced:
    """A traced function: its graph and how Python arguments map onto the graph's inputs."""

    graph: Graph
    in_tree: TreeDef
    out_tree: TreeDef
    in_paths: list[str]
    captured: list  # outer-trace values the graph reads as extra trailing inputs


def leaf_type(leaf, path: str = "argument") -> TensorType:
    """The static type of an argument leaf: an array, a scalar, a Spec or a tracer."""
    if isinstance(leaf, TensorType):
        return leaf
    if isinstance(leaf, Tracer):
        return leaf.value.type
    if isinstance(leaf, (np.ndarray, np.generic)):
        return TensorType(leaf.shape, dtype_name(leaf.dtype))
    if isinstance(leaf, (bool, numbers.Number)):
        return TensorType((), dtype_name(np.asarray(leaf).dtype))
    if hasattr(leaf, "shape") and hasattr(leaf, "dtype"):  # a device array (jax, numba-cuda)
        return TensorType(tuple(leaf.shape), dtype_name(np.dtype(str(leaf.dtype))))
    raise TypeError(f"{path}: cannot trace a {type(leaf).__name__}; pass arrays, scalars or bpir.Spec")


def arg_names(fn, n: int) -> list[str]:
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        params = []
    names = [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return [names[i] if i < len(names) else f"args[{i}]" for i in range(n)]


def _ir_name(path: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.]", "", re.sub(r"[\[\]]+", ".", path).replace("'", "")).strip(".")


def trace_function(fn, args: tuple, name: str | None = None) -> Traced:
    leaves, in_tree = flatten(tuple(args))
    roots = arg_names(fn, len(args))
    paths = [p for i, r in enumerate(roots) for p in leaf_paths(in_tree[1][i], r)]
    types = [leaf_type(leaf, path) for leaf, path in zip(leaves, paths)]
    fname = name or re.sub(r"\W", "_", getattr(fn, "__name__", "f")).strip("_") or "f"
    with context.tracing(fname) as trace, refusing_numpy_random():
        tracers = [Tracer(trace.builder.input(t, _ir_name(p)), trace) for t, p in zip(types, paths)]
        out = fn(*unflatten(in_tree, tracers))
        out_leaves, out_tree = flatten(out)
        try:
            outputs = [lift(o) for o in out_leaves]
        except TraceError as e:
            raise TraceError(f"{fname} returned something that is not an array: {e}") from None
    graph = trace.builder.finish(outputs)
    return Traced(graph, in_tree, out_tree, paths, list(trace.captured_from))


def trace(fn, *example_args) -> Graph:
    """Trace ``fn`` on example arguments (arrays, scalars or bpir.Spec leaves of pytrees)."""
    return trace_function(fn, example_args).graph
