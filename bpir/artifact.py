"""Ahead-of-time artifacts: a folder holding the optimized graph as text, a JSON manifest of
the signature, and whatever the backend adds (e.g. serialized StableHLO). Loading parses text
and JSON only; it never unpickles. A backend module may define ``save_artifact(executable,
folder, **options)`` and ``load_artifact(graph, manifest, folder) -> (run, source)``."""

from __future__ import annotations

import hashlib
import json
import os

from . import __version__
from .backend_registry import backend_module
from .compiled import Compiled, Executable
from .parser import parse

FORMAT = 1


def save(f: Compiled, path: str, **options) -> None:
    ex = f._current()
    os.makedirs(path, exist_ok=True)
    text = str(ex.graph)
    manifest = {
        "format": FORMAT,
        "bpir_version": __version__,
        "backend": f.backend,
        "graph_sha256": hashlib.sha256(text.encode()).hexdigest(),
        "in_tree": ex.in_tree,
        "out_tree": ex.out_tree,
        "in_paths": ex.in_paths,
        "in_types": [str(t) for t in ex.in_types],
        "out_types": [str(v.type) for v in ex.graph.outputs],
        "options": f.options,
    }
    module = backend_module(f.backend)
    if hasattr(module, "save_artifact"):
        manifest["backend_files"] = module.save_artifact(ex, path, **{**f.options, **options})
    with open(os.path.join(path, "graph.bpir"), "w") as fh:
        fh.write(text)
    with open(os.path.join(path, "manifest.json"), "w") as fh:
        json.dump(manifest, fh, indent=2)


def load(path: str) -> Compiled:
    with open(os.path.join(path, "manifest.json")) as fh:
        manifest = json.load(fh)
    if manifest.get("format") != FORMAT:
        raise ValueError(f"{path}: artifact format {manifest.get('format')} is not {FORMAT}")
    with open(os.path.join(path, "graph.bpir")) as fh:
        text = fh.read()
    if hashlib.sha256(text.encode()).hexdigest() != manifest["graph_sha256"]:
        raise ValueError(f"{path}: graph.bpir does not match the manifest's hash (corrupt artifact)")
    graph = parse(text)
    backend = manifest["backend"]
    module = backend_module(backend)
    if hasattr(module, "load_artifact"):
        run, source = module.load_artifact(graph, manifest, path)
    else:
        run, source = module.compile_graph(graph, **manifest.get("options", {}))
    types = [v.type for v in graph.inputs]
    if [str(t) for t in types] != manifest["in_types"]:
        raise ValueError(f"{path}: manifest signature does not match the graph")
    ex = Executable(
        graph, run, source, manifest["in_tree"], manifest["out_tree"], manifest["in_paths"], types
    )
    f = Compiled(None, backend, manifest.get("options", {}))
    f._cache["loaded"] = ex
    f._last = ex
    f.aot = True
    return f
