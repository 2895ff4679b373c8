"""Reading and checking an artifact's files: the manifest is untrusted JSON, so every field is
checked for type and against the graph, JSON nesting is bounded before ``json`` recurses, and
files are opened only by plain names inside the artifact folder (never through a symlink).
Every refusal is a ValueError naming the artifact and the field."""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import re
import stat
from typing import Any

from .ir import Graph
from .pytree import leaf_paths

MAX_JSON_DEPTH = 64  # brackets nested in the manifest (a pytree level takes two)
MAX_MANIFEST_BYTES = 16 << 20
_JSON_NESTING = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)
_SHA256 = re.compile(r"[0-9a-f]{64}")
_BAD_NAME = re.compile(r"[/\\\x00-\x1f\x7f]")


class ArtifactError(ValueError):
    """A tampered, corrupt or inconsistent artifact; the message names the artifact and field."""


def read_file(folder: str, name: str, field: str, limit: int | None = None) -> bytes:
    """The bytes of ``folder/name`` (see ``check_file``), at most ``limit`` of them."""
    with _open(folder, name, field) as fh:
        data = fh.read(limit + 1 if limit is not None else -1)
    if limit is not None and len(data) > limit:
        raise ArtifactError(f"{folder}: {field} ({name}) is larger than {limit} bytes")
    return data


def check_file(folder: str, name: str, field: str) -> None:
    """Refuse unless ``name`` is a plain name (no separator, no ``..``) of a regular file in
    ``folder``, not reached through a symlink."""
    _open(folder, name, field).close()


def _open(folder: str, name: str, field: str):
    # opened with O_NOFOLLOW and checked on the open descriptor: no race with a swapped link
    if not isinstance(name, str) or not name or name in (".", "..") or _BAD_NAME.search(name):
        raise ArtifactError(
            f"{folder}: {field} must be a plain file name in the artifact folder, got {name!r:.80}"
        )
    path = os.path.join(folder, name)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0))
    except OSError as e:
        if os.path.islink(path):
            raise ArtifactError(
                f"{folder}: {field} ({name}) is a symlink; artifacts hold plain files"
            ) from None
        raise ArtifactError(f"{folder}: cannot open {field} ({name}): {e.strerror}") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise ArtifactError(f"{folder}: {field} ({name}) is not a regular file")
    return os.fdopen(fd, "rb")


def loads_json(text: str, where: str) -> Any:
    """``json.loads`` with nesting bounded first (deep input raises ValueError, never
    RecursionError), duplicate keys and NaN/Infinity refused."""
    depth = 0
    for m in _JSON_NESTING.finditer(text):
        c = m.group()
        if c in "[{":
            depth += 1
            if depth > MAX_JSON_DEPTH:
                raise ArtifactError(f"{where}: JSON nested deeper than {MAX_JSON_DEPTH} levels")
        elif c in "]}":
            depth -= 1

    def pairs(items):
        keys = [k for k, _ in items]
        if len(set(keys)) != len(keys):
            raise ArtifactError(f"{where}: duplicate key in a JSON object")
        return dict(items)

    def constant(name):
        raise ArtifactError(f"{where}: {name} is not JSON")

    try:
        return json.loads(text, object_pairs_hook=pairs, parse_constant=constant)
    except ArtifactError:
        raise
    except ValueError as e:
        raise ArtifactError(f"{where}: not valid JSON ({e})") from None


def canonical_sha256(manifest: dict) -> str:
    """The hash of every manifest field but ``manifest_sha256`` itself (catches edits made
    without recomputing it; like ``graph_sha256`` it is a checksum, not a signature)."""
    body = {k: v for k, v in manifest.items() if k != "manifest_sha256"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()


# -- field checks -----------------------------------------------------------------------------


class Fields:
    """Typed access to a manifest's fields; each failure names the artifact and the field."""

    def __init__(self, folder: str, manifest: Any, known: set[str]):
        self.folder = folder
        if not isinstance(manifest, dict):
            self.fail("manifest", f"must be a JSON object, got {type(manifest).__name__}")
        unknown = sorted(set(manifest) - known)
        if unknown:
            self.fail(unknown[0], "is not a field of a bpir manifest")
        self.m = manifest

    def fail(self, field: str, message: str):
        raise ArtifactError(f"{self.folder}: manifest field {field!r} {message}")

    def get(self, field: str, kind: type | tuple[type, ...]) -> Any:
        if field not in self.m:
            self.fail(field, "is missing")
        value = self.m[field]
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
            names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
            self.fail(field, f"must be {names}, got {type(value).__name__}")
        return value

    def sha256(self, field: str) -> str:
        value = self.get(field, str)
        if not _SHA256.fullmatch(value):
            self.fail(field, "must be 64 lowercase hex digits")
        return value

    def strings(self, field: str) -> list[str]:
        value = self.get(field, list)
        if not all(isinstance(s, str) for s in value):
            self.fail(field, "must be a list of strings")
        return value

    def tree(self, field: str, leaves: int) -> Any:
        """A pytree definition (see ``bpir.pytree``) with exactly ``leaves`` leaves."""
        tree = self.get(field, (str, list, type(None)))
        count, stack = 0, [tree]
        while stack:  # iterative: depth is already bounded by the JSON reader
            d = stack.pop()
            if d == "*":
                count += 1
            elif d is None:
                continue
            elif isinstance(d, list) and len(d) == 2 and d[0] in ("tuple", "list") and isinstance(d[1], list):
                stack.extend(d[1])
            elif (isinstance(d, list) and len(d) == 3 and d[0] == "dict" and isinstance(d[1], list)
                  and isinstance(d[2], list) and len(d[1]) == len(d[2])
                  and all(isinstance(k, str) or type(k) is int for k in d[1])
                  and len(set(map(repr, d[1]))) == len(d[1])):  # fmt: skip
                stack.extend(d[2])
            else:
                self.fail(field, f"holds {json.dumps(d)[:80]}, not a pytree node")
        if count != leaves:
            self.fail(field, f"has {count} leaves, the graph has {leaves}")
        return tree

    def in_paths(self, field: str, tree: Any, graph: Graph) -> list[str]:
        """The argument paths: one per graph input, spelling the paths of ``tree``'s leaves."""
        paths = self.strings(field)
        if len(paths) != len(graph.inputs):
            self.fail(field, f"has {len(paths)} entries, the graph has {len(graph.inputs)} inputs")
        if isinstance(tree, list) and tree[0] == "tuple":
            k = 0
            for sub in tree[1]:
                suffixes = leaf_paths(sub, "")
                ours = paths[k : k + len(suffixes)]
                roots = {p[: len(p) - len(s)] if p.endswith(s) else None for p, s in zip(ours, suffixes)}
                if len(roots) > 1 or None in roots:
                    self.fail(field, f"{ours} do not spell the leaves of in_tree {suffixes}")
                k += len(suffixes)
        return paths

    def types(self, field: str, values) -> list[str]:
        got, want = self.strings(field), [str(v.type) for v in values]
        if got != want:
            self.fail(field, f"says {got}, the graph has {want}")
        return got

    def options(self, field: str, compile_graph) -> dict:
        """Keyword options for the backend's ``compile_graph``: names it takes, JSON values."""
        options = self.get(field, dict)
        params = inspect.signature(compile_graph).parameters
        takes_any = any(p.kind is p.VAR_KEYWORD for p in params.values())
        for key in options:
            if not key.isidentifier() or key.startswith("_") or key == "graph":
                self.fail(field, f"names {key!r:.40}, not an option name")
            if not takes_any and key not in params:
                self.fail(field, f"names {key!r}, not an option of this backend")
        return options
