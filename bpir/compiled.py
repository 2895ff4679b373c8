"""Compiled functions: argument checking by path, per-signature specialisation, AOT artifacts."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .backend_registry import BACKENDS, CompilesAhead, backend_module
from .gc_pause import full_collections_paused
from .ir import Graph
from .pytree import TreeDef, collector, describe, flatten, leaf_paths, unflattener
from .types import TensorType


@dataclass
class Executable:
    """One specialisation: a graph, its generated code and the pytree structure around it."""

    graph: Graph
    run: Callable
    source: str
    in_tree: TreeDef
    out_tree: TreeDef
    in_paths: list[str]
    in_types: list[TensorType]
    weak: list[bool] | None = None  # which leaves were Python scalars when traced; None: AOT

    def __post_init__(self):
        self.np_dtypes = [t.np_dtype for t in self.in_types]
        self.exact = [(t.shape, d) for t, d in zip(self.in_types, self.np_dtypes)]
        self.collect = collector(self.in_tree)
        self.build_out = unflattener(self.out_tree)
        # a backend whose dispatch checks the argument pytree itself (jax) takes it unflattened
        tree_call = getattr(self.run, "tree_call", None)
        self.fast = tree_call(self.in_tree, self.weak) if tree_call is not None else None

    def __call__(self, args: tuple) -> Any:
        if self.fast is not None:
            try:
                return self.build_out(self.fast(*args))
            except Exception:  # a signature the fast path does not take: checked (and explained) below
                pass
        leaves = check_args(self, args)
        return self.build_out(self.run(*leaves))

    def warm_up(self) -> None:
        """Build every kernel now: a program that can compile ahead of time does (jax: lower and
        compile, no data needed, multi-process meshes included); otherwise run once on zeros of
        the signature's types, whose values are irrelevant (floating-point warnings silenced)."""
        if isinstance(self.run, CompilesAhead):
            self.run.compile_ahead()
            return
        with np.errstate(all="ignore"):
            self.run(*(np.zeros(t.shape, t.np_dtype) for t in self.in_types))


def check_args(ex: Executable, args: tuple) -> list:
    from bpir.frontends.trace import leaf_type

    leaves = ex.collect(tuple(args))
    if leaves is None:
        raise TypeError(f"{ex.graph.name} expects arguments structured as {describe(ex.in_tree)}, "
                        f"got {describe(flatten(tuple(args))[1])}")  # fmt: skip
    if all(
        type(x) is np.ndarray and x.shape == shape and x.dtype is dtype
        for x, (shape, dtype) in zip(leaves, ex.exact)
    ):
        return leaves  # the common case: arrays of exactly the declared types
    for leaf, path, want, np_dtype in zip(leaves, ex.in_paths, ex.in_types, ex.np_dtypes):
        if getattr(leaf, "shape", None) == want.shape and getattr(leaf, "dtype", None) == np_dtype:
            continue  # an array subclass, or an equal dtype object: still no types built
        got = leaf_type(leaf, path)
        if got.shape != want.shape:
            raise ValueError(f"{path}: expected shape {want.shape} ({want}), got {got.shape}")
        if got.dtype != want.dtype and not (
            isinstance(leaf, (int, float, bool)) and got.shape == () and _same_kind(got.dtype, want.dtype)
        ):
            raise TypeError(f"{path}: expected dtype {want.dtype} ({want}), got {got.dtype}")
    # a Python scalar reaches every backend as the declared dtype (a weak scalar input's)
    return [np_dtype.type(x) if isinstance(x, (int, float, bool)) else x
            for x, np_dtype in zip(leaves, ex.np_dtypes)]  # fmt: skip


def _same_kind(a: str, b: str) -> bool:
    return a[0] == b[0]


def build(
    graph: Graph, backend: str, in_tree, out_tree, in_paths, optimize=True, weak=None, **options
) -> Executable:
    from .passes.manager import optimize as run_passes

    if optimize:
        graph = run_passes(graph)
    module = backend_module(backend)
    if BACKENDS[backend].takes_paths:  # options such as shardings name arguments by path
        options = {**options, "in_paths": list(in_paths), "out_paths": leaf_paths(out_tree, "out")}
    run, source = module.compile_graph(graph, **options)
    types = [v.type for v in graph.inputs]
    return Executable(graph, run, source, in_tree, out_tree, in_paths, types, weak)


@dataclass
class Signature:
    """What a compiled function takes and returns; paths are the keys ``bpir run`` reads from .npz."""

    name: str
    structure: str
    inputs: list[tuple[str, TensorType]]
    outputs: list[TensorType]
    out_structure: str

    def __str__(self) -> str:
        lines = [f"{self.name}{self.structure}" if self.structure.startswith("(") else self.name,
                 "  arguments (path: type):"]  # fmt: skip
        lines += [f"    {path}: {t}" for path, t in self.inputs]
        lines.append(f"  returns {self.out_structure}: " + ", ".join(str(t) for t in self.outputs))
        return "\n".join(lines)


def _keys_sorted(tree):
    if isinstance(tree, dict):
        return {k: _keys_sorted(tree[k]) for k in sorted(tree, key=lambda k: (type(k).__name__, k))}
    if isinstance(tree, (list, tuple)) and not hasattr(tree, "_fields"):
        return type(tree)(_keys_sorted(t) for t in tree)
    return tree


class Compiled:
    """A function compiled by bpir: call it like the original, inspect ``.graph``/``.source``."""

    def __init__(self, fn: Callable | None, backend: str, options: dict | None = None):
        self.fn = fn
        self.backend = backend
        self.options = options or {}
        self._cache: dict[Any, Executable] = {}
        self._last: Executable | None = None
        self.aot = False

    @classmethod
    def loaded(cls, backend: str, options: dict, ex: Executable) -> Compiled:
        """A compiled function around one executable built elsewhere (an artifact): called with
        that signature only, never re-traced."""
        f = cls(None, backend, options)
        f._cache["loaded"] = ex
        f._last = ex
        f.aot = True
        return f

    def specialize(self, args: tuple) -> Executable:
        from bpir.frontends.trace import leaf_type, trace_function
        from bpir.frontends.tracer import is_weak

        leaves, tree = flatten(_keys_sorted(tuple(args)))  # dict key order does not matter
        # a Python scalar is weakly typed (NEP 50): 0.1 and np.float64(0.1) trace differently
        key = (json.dumps(tree), tuple((leaf_type(x), is_weak(x)) for x in leaves))
        ex = self._cache.get(key)
        if ex is None:
            if self.aot and self._cache:
                # ahead-of-time: a signature the artifact was not built for is an error
                return next(iter(self._cache.values()))
            with full_collections_paused():
                t = trace_function(self.fn, tuple(args))
                weak = [is_weak(x) for x in flatten(tuple(args))[0]]  # in the graph's input order
                ex = build(
                    t.graph, self.backend, t.in_tree, t.out_tree, t.in_paths, weak=weak, **self.options
                )
            self._cache[key] = ex
        self._last = ex
        return ex

    def __call__(self, *args):
        if self.aot:  # built for one signature: no re-tracing, the arguments are checked against it
            return self._last(args)
        last = self._last
        if last is not None and last.fast is not None:
            try:  # the last signature again: the fast path accepts exactly what specialize would map to it
                return last.build_out(last.fast(*args))
            except Exception:
                pass
        return self.specialize(args)(args)

    def _current(self) -> Executable:
        if self._last is None:
            raise RuntimeError("not compiled yet: call it once or pass example_args to bpir.compile")
        return self._last

    @property
    def executable(self) -> Executable:
        """The current specialisation: its graph, generated code and the backend's program (for
        backend-specific inspection, e.g. ``bpir.backends.jax.backend.stablehlo(f.executable)``)."""
        return self._current()

    @property
    def graph(self) -> Graph:
        return self._current().graph

    @property
    def signature(self) -> Signature:
        """The argument structure, leaf paths and types the compiled function expects."""
        ex = self._current()
        return Signature(ex.graph.name, describe(ex.in_tree), list(zip(ex.in_paths, ex.in_types)),
                         [v.type for v in ex.graph.outputs], describe(ex.out_tree))  # fmt: skip

    def __repr__(self) -> str:
        if self._last is None:
            return f"<bpir.Compiled {getattr(self.fn, '__name__', '?')} backend={self.backend!r}, not compiled yet>"
        kind = "ahead of time" if self.aot else "just in time"
        return f"<bpir.Compiled backend={self.backend!r} ({kind})\n{self.signature}>"

    @property
    def source(self) -> str:
        return self._current().source

    def save(self, path: str, **options) -> None:
        """Write an AOT artifact folder (see bpir.artifact); backends take extra options,
        e.g. ``platforms=("cpu", "tpu")`` for jax."""
        from .artifact import save

        save(self, path, **options)
