"""Ahead-of-time artifacts: a folder holding the optimized graph as text, a JSON manifest of
the signature, and whatever the backend adds (e.g. serialized StableHLO). Loading parses text
and JSON only; it never unpickles. A backend module may define ``save_artifact(executable,
folder, **options)`` and ``load_artifact(graph, manifest, folder) -> (run, source)``."""

from __future__ import annotations

import hashlib
import json
import os

from . import __version__
from .backend_registry import BACKENDS, backend_module
from .compiled import Compiled, Executable
from .errors import ParseError
from .manifest import (
    MAX_MANIFEST_BYTES,
    ArtifactError,
    Fields,
    canonical_sha256,
    check_file,
    loads_json,
    read_file,
)
from .parser import parse

FORMAT = 2  # 2: manifest_sha256 added, every field checked against the graph
FIELDS = {"format", "bpir_version", "backend", "graph_sha256", "in_tree", "out_tree", "in_paths",
          "in_types", "out_types", "options", "backend_files", "manifest_sha256"}  # fmt: skip
# what each backend's ``backend_files`` holds: "file" fields name files in the artifact folder
BACKEND_FILES = {
    "jax": {"jax_export": "file", "sha256": "sha256", "platforms": "strings", "stablehlo": "file"},
    "numba": {"kernels": "file", "kernels_sha256": "sha256", "objects": "file", "objects_sha256": "sha256"},
}
# backends whose files are an optimisation (numba's machine code): without them the graph compiles
OPTIONAL_FILES = {"numba"}


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
    if BACKENDS[f.backend].artifact_files:
        manifest["backend_files"] = module.save_artifact(ex, path, **{**f.options, **options})
    manifest["manifest_sha256"] = canonical_sha256(manifest)
    with open(os.path.join(path, "graph.bpir"), "w") as fh:
        fh.write(text)
    with open(os.path.join(path, "manifest.json"), "w") as fh:
        json.dump(manifest, fh, indent=2)


def load(path: str, machine_code: bool = False) -> Compiled:
    """Load an artifact folder, refusing (ValueError naming the artifact and the field) any file
    or field that is malformed or disagrees with the graph; no code from the files ever runs,
    unless ``machine_code``: then a numba artifact's kernels run the machine code it carries
    (trust it as a binary from its author; see ``bpir.backends.numba.aot``)."""
    raw = read_file(path, "manifest.json", "manifest.json", MAX_MANIFEST_BYTES)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ArtifactError(f"{path}: manifest.json is not UTF-8 text") from None
    m = Fields(path, loads_json(text, f"{path}/manifest.json"), FIELDS)
    version = m.get("format", int)
    if version != FORMAT:
        m.fail("format", f"is {version}: artifact format {version} is not {FORMAT}; save it again "
                         "with this version of bpir")  # fmt: skip
    if m.sha256("manifest_sha256") != canonical_sha256(m.m):
        raise ArtifactError(f"{path}: manifest fields do not match manifest_sha256 (corrupt artifact)")
    m.get("bpir_version", str)
    backend = m.get("backend", str)
    if backend not in BACKENDS:
        m.fail("backend", f"is {backend!r:.40}, not one of {sorted(BACKENDS)}")
    graph_bytes = read_file(path, "graph.bpir", "graph.bpir")
    if hashlib.sha256(graph_bytes).hexdigest() != m.sha256("graph_sha256"):
        raise ArtifactError(f"{path}: graph.bpir does not match the manifest's hash (corrupt artifact)")
    try:
        graph = parse(graph_bytes.decode("utf-8"))
    except UnicodeDecodeError:
        raise ArtifactError(f"{path}: graph.bpir is not UTF-8 text") from None
    except ParseError as e:
        raise ArtifactError(f"{path}: graph.bpir: {e}") from None
    in_tree = m.tree("in_tree", len(graph.inputs))
    if not (isinstance(in_tree, list) and in_tree[0] == "tuple"):
        m.fail("in_tree", "must be the tuple of the function's arguments")
    out_tree = m.tree("out_tree", len(graph.outputs))
    in_paths = m.in_paths("in_paths", in_tree, graph)
    m.types("in_types", graph.inputs)
    m.types("out_types", graph.outputs)
    module = backend_module(backend)
    options = m.options("options", module.compile_graph)
    if BACKENDS[backend].artifact_files and ("backend_files" in m.m or backend not in OPTIONAL_FILES):
        _check_backend_files(m, path, backend)
        extra = {"machine_code": machine_code} if backend == "numba" else {}
        run, source = module.load_artifact(graph, m.m, path, **extra)
    else:
        if "backend_files" in m.m:
            m.fail("backend_files", f"is given, but the {backend} backend writes none")
        run, source = module.compile_graph(graph, **options)
    types = [v.type for v in graph.inputs]
    ex = Executable(graph, run, source, in_tree, out_tree, in_paths, types)
    return Compiled.loaded(backend, options, ex)


def _check_backend_files(m: Fields, path: str, backend: str) -> None:
    """The backend's own fields, by ``BACKEND_FILES``; files must be plain regular files."""
    files = m.get("backend_files", dict)
    schema = BACKEND_FILES.get(backend, {})
    if set(files) != set(schema):
        m.fail("backend_files", f"has keys {sorted(files)}, the {backend} backend writes {sorted(schema)}")
    sub = Fields(path, files, set(schema))
    for key, kind in schema.items():
        field = f"backend_files.{key}"
        if kind == "file":
            check_file(path, sub.get(key, str), field)
        elif kind == "sha256":
            sub.sha256(key)
        else:
            sub.strings(key)
