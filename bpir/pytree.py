"""Pytrees: nested dict/list/tuple containers of leaves, with readable leaf paths.

A tree definition is plain JSON-able data, so compiled artifacts store it without pickle."""

from __future__ import annotations

from collections.abc import Callable
from itertools import islice
from typing import Any

TreeDef = Any  # "*" for a leaf, ["tuple"|"list", [children]], ["dict", [keys], [children]], None


def flatten(tree: Any, is_leaf: Callable[[Any], bool] | None = None) -> tuple[list, TreeDef]:
    leaves: list = []
    return leaves, _flatten(tree, is_leaf, leaves)


def _flatten(t: Any, is_leaf, leaves: list) -> TreeDef:
    # the pytree walkers are module-level functions: a recursive closure would be a reference
    # cycle holding the leaves (user arrays, results) until the cyclic GC runs
    if is_leaf is not None and is_leaf(t):
        leaves.append(t)
        return "*"
    if t is None:
        return None
    if isinstance(t, (tuple, list)) and not hasattr(t, "_fields"):
        return ["tuple" if isinstance(t, tuple) else "list", [_flatten(c, is_leaf, leaves) for c in t]]
    if isinstance(t, dict):
        keys = list(t)
        if not all(isinstance(k, (str, int)) for k in keys):
            raise TypeError(f"pytree dict keys must be str or int, got {keys!r}")
        return ["dict", keys, [_flatten(t[k], is_leaf, leaves) for k in keys]]
    leaves.append(t)
    return "*"


def flatten_like(tree: Any, treedef: TreeDef) -> list | None:
    """The leaves of ``tree`` in ``treedef``'s order, or None if the structures differ. Dict
    keys match by name, not position (``jax.device_put`` of a dict returns it key-sorted)."""
    leaves: list = []
    return leaves if _collect_like(tree, treedef, leaves) else None


def _collect_like(t: Any, d: TreeDef, leaves: list) -> bool:
    if d == "*":
        if isinstance(t, (tuple, list, dict)) or t is None:
            return False
        leaves.append(t)
        return True
    if d is None:
        return t is None
    if d[0] == "dict":
        return (isinstance(t, dict) and set(t) == set(d[1])
                and all(_collect_like(t[k], c, leaves) for k, c in zip(d[1], d[2])))  # fmt: skip
    want = tuple if d[0] == "tuple" else list
    return (isinstance(t, want) and not hasattr(t, "_fields") and len(t) == len(d[1])
            and all(_collect_like(x, c, leaves) for x, c in zip(t, d[1])))  # fmt: skip


def collector(treedef: TreeDef) -> Callable[[Any], list | None]:
    """``flatten_like`` specialised to one tree definition, for a compiled function's arguments
    on every call: the tree definition is walked once here, not per call (the GRU step's 27
    parameter and optimizer-state leaves: 34 -> a few us)."""
    collect = _collector(treedef)

    def leaves_of(tree: Any) -> list | None:
        leaves: list = []
        return leaves if collect(tree, leaves) else None

    return leaves_of


def _is_leaf(t: Any) -> bool:
    return t is not None and not isinstance(t, (tuple, list, dict))


def _collector(d: TreeDef) -> Callable[[Any, list], bool]:
    if d == "*":
        return lambda t, leaves: _is_leaf(t) and (leaves.append(t) or True)
    if d is None:
        return lambda t, leaves: t is None
    children = [_collector(c) for c in d[-1]]
    flat = all(c == "*" for c in d[-1])
    if d[0] == "dict":
        keys = tuple(d[1])
        names = frozenset(keys)

        def collect_dict(t: Any, leaves: list) -> bool:
            if not isinstance(t, dict) or t.keys() != names:
                return False
            if flat:
                values = [t[k] for k in keys]
                return all(map(_is_leaf, values)) and (leaves.extend(values) or True)
            return all(c(t[k], leaves) for k, c in zip(keys, children))

        return collect_dict
    want, n = (tuple if d[0] == "tuple" else list), len(children)

    def collect_sequence(t: Any, leaves: list) -> bool:
        if not isinstance(t, want) or hasattr(t, "_fields") or len(t) != n:
            return False
        if flat:
            return all(map(_is_leaf, t)) and (leaves.extend(t) or True)
        return all(c(x, leaves) for x, c in zip(t, children))

    return collect_sequence


def unflatten(treedef: TreeDef, leaves: list) -> Any:
    return _build(treedef, iter(leaves))


def _build(d: TreeDef, it) -> Any:
    if d == "*":
        return next(it)
    if d is None:
        return None
    if d[0] == "dict":
        return {k: _build(c, it) for k, c in zip(d[1], d[2])}
    children = [_build(c, it) for c in d[1]]
    return tuple(children) if d[0] == "tuple" else children


def leaf_paths(treedef: TreeDef, root: str) -> list[str]:
    """Python-style paths of the leaves, e.g. ``params['W1']`` or ``args[0][1]``."""
    out: list[str] = []

    def go(d, path):
        if d == "*":
            out.append(path)
        elif d is None:
            return
        elif d[0] == "dict":
            for k, c in zip(d[1], d[2]):
                go(c, f"{path}[{k!r}]")
        else:
            for i, c in enumerate(d[1]):
                go(c, f"{path}[{i}]")

    go(treedef, root)
    return out


def describe(treedef: TreeDef) -> str:
    """A short structural description for error messages."""
    if treedef == "*":
        return "array"
    if treedef is None:
        return "None"
    if treedef[0] == "dict":
        return "{" + ", ".join(f"{k!r}: {describe(c)}" for k, c in zip(treedef[1], treedef[2])) + "}"
    inner = ", ".join(describe(c) for c in treedef[1])
    return f"({inner})" if treedef[0] == "tuple" else f"[{inner}]"


def unflattener(treedef: TreeDef) -> Callable[[Any], Any]:
    """``unflatten`` specialised to one tree definition, for a compiled function's results on
    every call: containers of leaves only are built by C loops (``dict(zip(keys, it))`` takes
    exactly ``len(keys)`` leaves), so a step returning dicts of arrays pays a few µs, not one
    Python call per leaf."""
    build = _builder(treedef)
    return lambda leaves: build(iter(leaves))


def _builder(d: TreeDef) -> Callable:
    if d == "*":
        return next
    if d is None:
        return lambda it: None
    children = [_builder(c) for c in d[-1]]
    flat = all(c == "*" for c in d[-1])
    if d[0] == "dict":
        keys = tuple(d[1])
        if flat:
            return lambda it: dict(zip(keys, it))
        return lambda it: {k: b(it) for k, b in zip(keys, children)}
    make = tuple if d[0] == "tuple" else list
    if flat:
        n = len(children)
        return lambda it: make(islice(it, n))
    return lambda it: make([b(it) for b in children])
