"""Tampered artifacts, on every backend: every field of every file is removed, mistyped or given
an attacker's payload (with the manifest's unkeyed hashes recomputed, as an attacker would).
Two outcomes only: a clear ValueError that names the artifact and the field, or a function that
loads and computes what the graph says. No payload ever runs: the marker file it would create
never appears, neither while loading nor while calling."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil

import numpy as np
import pytest
from conftest import BACKENDS

import bpir
from bpir.builder import Builder
from bpir.manifest import canonical_sha256
from bpir.types import TensorType


def model(params, x):
    h = np.tanh(x @ params["W"] + params["b"])
    s = np.sum(h * h, axis=1, keepdims=True)
    return {"loss": np.mean(s), "h": h.astype(np.float64)}


def example_args():
    rng = np.random.default_rng(0)
    params = {"W": rng.standard_normal((3, 4)).astype(np.float32), "b": np.zeros(4, np.float32)}
    return params, rng.standard_normal((5, 3)).astype(np.float32)


def save(backend, tmp_path_factory):
    """(backend, pristine artifact folder, outputs of the compiled function)."""
    f = bpir.compile(model, backend=backend, example_args=example_args())
    folder = tmp_path_factory.mktemp(f"tamper-{backend}") / "art"
    f.save(str(folder))
    return backend, folder, _numpy(f(*example_args()))


@pytest.fixture(scope="module", params=BACKENDS)
def saved(request, tmp_path_factory):
    return save(request.param, tmp_path_factory)


@pytest.fixture(scope="module")
def saved_jax(tmp_path_factory):
    return save("jax", tmp_path_factory)


def fresh_copy(saved, tmp_path):
    backend, folder, want = saved
    copy = tmp_path / "art"
    shutil.copytree(folder, copy, symlinks=True)
    return Artifact(backend, copy, want, tmp_path / "PWNED")


@pytest.fixture
def art(saved, tmp_path):
    """A fresh copy of the saved artifact, and the marker path every payload tries to create."""
    return fresh_copy(saved, tmp_path)


@pytest.fixture
def jax_art(saved_jax, tmp_path):
    """The same for the jax backend, the one that writes backend files (its serialized export)."""
    return fresh_copy(saved_jax, tmp_path)


def _numpy(out):
    return {k: np.asarray(v) for k, v in out.items()} if isinstance(out, dict) else out


class Artifact:
    """An artifact folder under attack: rewrite its files, then expect a refusal or a clean load."""

    def __init__(self, backend, path, want, marker):
        self.backend, self.path, self.want, self.marker = backend, path, want, marker
        self.code = f"open({str(marker)!r}, 'w').close()"

    @property
    def manifest(self) -> dict:
        return json.loads((self.path / "manifest.json").read_text())

    def write_manifest(self, manifest, rehash=True) -> None:
        if rehash and isinstance(manifest, dict):
            manifest["manifest_sha256"] = canonical_sha256(manifest)
        (self.path / "manifest.json").write_text(json.dumps(manifest))

    def edit_manifest(self, change, rehash=True) -> None:
        m = self.manifest
        change(m)
        self.write_manifest(m, rehash)

    @property
    def graph(self) -> str:
        return (self.path / "graph.bpir").read_text()

    def write_graph(self, text: str | bytes) -> None:
        """Replace graph.bpir and recompute both hashes."""
        data = text.encode() if isinstance(text, str) else text
        (self.path / "graph.bpir").write_bytes(data)
        self.edit_manifest(lambda m: m.update(graph_sha256=hashlib.sha256(data).hexdigest()))

    def refused(self, *words: str) -> str:
        with pytest.raises(ValueError) as info:
            bpir.load(str(self.path))
        message = str(info.value)
        assert str(self.path) in message, message
        for w in words:
            assert w in message, f"{w!r} not in: {message}"
        assert not self.marker.exists(), "the payload ran"
        return message

    def loads(self, args=None):
        f = bpir.load(str(self.path))
        out = _numpy(f(*(args or example_args())))
        assert not self.marker.exists(), "the payload ran"
        return out

    def loads_same(self, rtol=0.0):
        out = self.loads()
        assert sorted(out) == sorted(self.want)
        for k in out:
            np.testing.assert_allclose(out[k], self.want[k], rtol=rtol, atol=0)


def test_the_pristine_artifact_loads(art):
    art.loads_same()


# -- manifest.json: every field removed, mistyped, or made inconsistent ------------------------


def fields(backend):
    base = ["format", "bpir_version", "backend", "graph_sha256", "in_tree", "out_tree", "in_paths",
            "in_types", "out_types", "options", "manifest_sha256"]  # fmt: skip
    return base + (["backend_files"] if backend == "jax" else [])


WRONG_TYPE = {dict: [1], list: {"a": 1}, str: 7, int: "2"}


def test_every_manifest_field_missing_or_mistyped_is_refused(art):
    for field in fields(art.backend):
        original = art.manifest
        m = dict(original)
        del m[field]
        art.write_manifest(m, rehash=field != "manifest_sha256")
        art.refused(repr(field), "missing")
        value = original[field]
        bad = WRONG_TYPE[type(value)] if field not in ("in_tree", "out_tree") else {"a": 1}
        m = {**original, field: bad}
        art.write_manifest(m, rehash=field != "manifest_sha256")
        art.refused(repr(field) if field != "manifest_sha256" else "manifest_sha256")
        art.write_manifest(original, rehash=False)
    art.loads_same()


def test_an_edit_without_recomputing_manifest_sha256_is_refused(art):
    art.edit_manifest(lambda m: m["out_tree"][1].reverse(), rehash=False)
    art.refused("manifest_sha256", "corrupt")


@pytest.mark.parametrize("manifest", [[], "numpy", 3, None, True])
def test_a_manifest_that_is_not_an_object_is_refused(art, manifest):
    art.write_manifest(manifest)
    art.refused("'manifest'", "JSON object")


@pytest.mark.parametrize(
    "raw, words",
    [
        (b"", ["not valid JSON"]),
        (b"{", ["not valid JSON"]),
        (b"\xff\xfe{}", ["not UTF-8"]),
        (b'{"format": NaN}', ["NaN is not JSON"]),
        (b'{"format": 2, "format": 2}', ["duplicate key"]),
        (b'{"in_tree": ' + b'["tuple", [' * 100_000 + b'"*"' + b"]]" * 100_000 + b"}", ["nested deeper"]),
    ],
)
def test_malformed_manifest_bytes_are_refused(art, raw, words):
    (art.path / "manifest.json").write_bytes(raw)
    art.refused(*words)


@pytest.mark.parametrize(
    "field, value, words",
    [
        ("format", 1, ["format 1 is not 2"]),
        ("format", 999, ["format 999"]),
        ("format", True, ["'format'", "must be int"]),
        ("backend", "os.system('id')", ["'backend'", "not one of"]),
        ("backend", "../numpy", ["'backend'", "not one of"]),
        ("graph_sha256", "0" * 64, ["does not match", "corrupt"]),
        ("graph_sha256", "g" * 64, ["'graph_sha256'", "hex"]),
        (
            "in_tree",
            ["tuple", [["dict", ["W", "b"], ["*", "*"]]]],
            ["'in_tree'", "2 leaves, the graph has 3"],
        ),
        ("in_tree", ["tuple", [["dict", ["b", "W"], ["*", "*"]], "*"]], ["'in_paths'", "do not spell"]),
        ("in_tree", ["tuple", [["dict", ["W", "W"], ["*", "*"]], "*"]], ["'in_tree'", "not a pytree node"]),
        ("in_tree", ["eval", [["dict", ["W", "b"], ["*", "*"]], "*"]], ["'in_tree'", "not a pytree node"]),
        ("in_tree", ["dict", ["p", "q", "x"], ["*", "*", "*"]], ["'in_tree'", "tuple of the function's"]),
        ("in_tree", "*", ["'in_tree'", "1 leaves, the graph has 3"]),
        ("out_tree", ["dict", ["loss"], ["*"]], ["'out_tree'", "1 leaves, the graph has 2"]),
        ("out_tree", ["dict", ["loss", "h"], ["*", ["tuple", ["*"]], "*"]], ["'out_tree'", "not a pytree"]),
        ("out_tree", ["dict", ["loss", "h", "x"], ["*", "*"]], ["'out_tree'", "not a pytree node"]),
        ("in_paths", ["params['W']", "x"], ["'in_paths'", "2 entries"]),
        ("in_paths", ["params['W']", "params['b']", 3], ["'in_paths'", "list of strings"]),
        ("in_paths", ["params['W']", "other['b']", "x"], ["'in_paths'", "do not spell"]),
        ("in_types", ["f32[3,4]", "f32[4]", "f64[5,3]"], ["'in_types'", "the graph has"]),
        ("out_types", ["f32[]", "f32[5,4]"], ["'out_types'", "the graph has"]),
        ("out_types", ["f32[]"], ["'out_types'", "the graph has"]),
        ("evil", "__import__('os')", ["'evil'", "not a field"]),
    ],
)
def test_inconsistent_manifest_fields_are_refused(art, field, value, words):
    art.edit_manifest(lambda m: m.update({field: value}))
    art.refused(*words)


def test_unknown_backend_options_are_refused(art):
    art.edit_manifest(lambda m: m.update(options={"__class__": 1}))
    art.refused("'options'", "'__class__'")


def test_relabelled_out_tree_keys_load_with_the_relabelled_names(art):
    # The manifest's hashes are checksums, not signatures: an attacker who recomputes them can
    # rename outputs consistently. What must hold: nothing runs, and the values are the graph's.
    art.edit_manifest(lambda m: m["out_tree"][1].reverse())
    out = art.loads()
    np.testing.assert_array_equal(out["h"], art.want["loss"])
    np.testing.assert_array_equal(out["loss"], art.want["h"])


def test_another_valid_backend_name_compiles_the_checked_graph(art):
    other = "numba" if art.backend == "numpy" else "numpy"

    def relabel(m):
        m["backend"] = other
        m.pop("backend_files", None)
        m["options"] = {}

    art.edit_manifest(relabel)
    art.loads_same(rtol=1e-6)


# -- graph.bpir: payloads in every attribute and every line, hashes recomputed -----------------


def test_code_in_keepdims_is_refused(art):
    payload = json.dumps(f"True)\n{art.code}\n#")
    assert "keepdims=true" in art.graph
    art.write_graph(art.graph.replace("keepdims=true", f"keepdims={payload}"))
    art.refused("graph.bpir", "'keepdims': expected bool")


def test_code_in_every_attribute_value_is_refused(art):
    text = art.graph
    attrs = list(re.finditer(r"(?<=[{ ])(\w+)=((?:\([^)]*\))|\"[^\"]*\"|[^,}]+)", text))
    assert len(attrs) >= 6
    for m in attrs:
        payload = json.dumps(f"{m.group(2)}); {art.code} #")
        art.write_graph(text[: m.start(2)] + payload + text[m.end(2) :])
        art.refused("graph.bpir", repr(m.group(1)))


def test_code_in_every_line_is_refused(art):
    lines = art.graph.splitlines()
    for i in range(len(lines)):
        art.write_graph("\n".join(lines[:i] + [art.code] + lines[i + 1 :]) + "\n")
        art.refused("graph.bpir", f"line {i + 1}")


@pytest.mark.parametrize("sep", ["\r", "\n", "\u2028", "\x0c", "\x85"])
def test_a_line_break_in_a_location_is_refused(art, sep):
    text = art.graph.replace("loc(", f"loc(x.py:1{sep}{art.code}{sep}#", 1)
    art.write_graph(text)
    art.refused("graph.bpir", "line 2")


@pytest.mark.parametrize(
    "old, new, words",
    [
        ("= div %3, %4", "= div %3, %4, %3", ["div takes 2 operands, got 3"]),
        ("= tanh %0", "= tanh %0, %in1", ["tanh takes 1 operand, got 2"]),
        ('{dtype="f64"}', '{dtype="f64\\")\\nimport os\\n#"}', ["'dtype': expected dtype name"]),
        ("{value=5.0}", '{value="5.0); import os"}', ["not a f32 literal"]),
        ("{value=5.0}", '{value=dense<b64:"AAC">}', ["malformed base64"]),
        ("f32[5,3]", "f32[5.5,3]", ["expected a dimension"]),
        ("func @model", "func @model();import os", ["expected"]),
        ("%params.W: f32[3,4]", "%params.W: f32[3,4] from __import__", ["expected string"]),
    ],
)
def test_malformed_graph_text_is_refused(art, old, new, words):
    assert old in art.graph
    art.write_graph(art.graph.replace(old, new, 1))
    art.refused("graph.bpir", *words)


def test_deep_nesting_in_the_graph_is_refused(art):
    art.write_graph(art.graph.replace("axes=(1,)", "axes=" + "(" * 5000 + "1" + ")" * 5000, 1))
    art.refused("graph.bpir", "nested deeper")
    region = "    region = func @r(%a: f32[]) -> (f32[]) {\n  %0: f32[] = fused %a {shape=()}\n"
    deep = "func @f(%a: f32[]) -> (f32[]) {\n  %0: f32[] = fused %a {shape=()}\n" + region * 2000
    art.write_graph(deep)
    art.refused("graph.bpir", "nested deeper")


def test_truncated_or_binary_graph_is_refused(art):
    text = art.graph
    art.write_graph(text[: len(text) // 2])
    art.refused("graph.bpir")
    art.write_graph(b"\xff\xfe" + text.encode())
    art.refused("graph.bpir", "not UTF-8")


def test_an_edited_graph_without_its_hash_is_refused(art):
    (art.path / "graph.bpir").write_text(art.graph.replace("tanh", "exp"))
    art.refused("graph.bpir", "corrupt")


# -- the folder: symlinks, odd files, missing files --------------------------------------------


@pytest.mark.parametrize("name", ["manifest.json", "graph.bpir"])
def test_symlinked_files_are_refused(art, name, tmp_path):
    elsewhere = tmp_path / f"elsewhere-{name}"
    shutil.move(art.path / name, elsewhere)
    os.symlink(elsewhere, art.path / name)
    art.refused(name, "symlink")


@pytest.mark.parametrize("name", ["manifest.json", "graph.bpir"])
def test_missing_or_directory_files_are_refused(art, name):
    os.remove(art.path / name)
    art.refused(name, "cannot open")
    os.mkdir(art.path / name)
    art.refused(name)


# -- backend files (jax's serialized export) ---------------------------------------------------


def test_backend_files_on_a_backend_that_writes_none_are_refused(art):
    if art.backend in ("jax", "numba"):
        art.edit_manifest(lambda m: m.update(backend="numpy"))
    else:
        files = {
            "jax_export": "graph.bpir",
            "sha256": "0" * 64,
            "platforms": ["cpu"],
            "stablehlo": "graph.bpir",
        }
        art.edit_manifest(lambda m: m.update(backend_files=files))
    art.refused("'backend_files'", "writes none")


@pytest.mark.parametrize(
    "name", ["../../etc/passwd", "/etc/passwd", "sub/model.jax_export", "..", ".", "", "a\\b", "a\x00b"]
)
@pytest.mark.parametrize("key", ["jax_export", "stablehlo"])
def test_backend_file_paths_outside_the_folder_are_refused(jax_art, key, name):
    jax_art.edit_manifest(lambda m: m["backend_files"].update({key: name}))
    jax_art.refused(f"backend_files.{key}", "plain file name")


@pytest.mark.parametrize("key", ["jax_export", "stablehlo"])
def test_symlinked_backend_files_are_refused(jax_art, key):
    target = jax_art.manifest["backend_files"][key]
    os.symlink(jax_art.path / target, jax_art.path / "link")
    jax_art.edit_manifest(lambda m: m["backend_files"].update({key: "link"}))
    jax_art.refused(f"backend_files.{key}", "symlink")


def test_backend_file_fields_are_checked(jax_art):
    jax_art.edit_manifest(lambda m: m["backend_files"].update(evil="x"))
    jax_art.refused("'backend_files'", "writes")
    jax_art.edit_manifest(lambda m: m["backend_files"].pop("evil"))
    jax_art.edit_manifest(lambda m: m["backend_files"].update(platforms="cpu"))
    jax_art.refused("'platforms'", "list")
    jax_art.edit_manifest(lambda m: m["backend_files"].update(platforms=["cpu"], sha256="0" * 64))
    jax_art.refused("does not match the manifest's hash")


@pytest.mark.parametrize("blob", [b"", b"garbage" * 10, bytes(64)])
def test_a_garbled_export_with_its_hash_recomputed_is_refused(jax_art, blob):
    name = jax_art.manifest["backend_files"]["jax_export"]
    (jax_art.path / name).write_bytes(blob)
    jax_art.edit_manifest(lambda m: m["backend_files"].update(sha256=hashlib.sha256(blob).hexdigest()))
    jax_art.refused("backend_files.jax_export", "not a jax.export serialization")


def test_an_export_of_another_signature_is_refused(jax_art, tmp_path):
    other = bpir.compile(lambda x: x * 2, backend="jax", example_args=(np.zeros(3, np.float32),))
    other.save(str(tmp_path / "other"))
    blob = (tmp_path / "other" / "model.jax_export").read_bytes()
    (jax_art.path / "model.jax_export").write_bytes(blob)
    jax_art.edit_manifest(lambda m: m["backend_files"].update(sha256=hashlib.sha256(blob).hexdigest()))
    jax_art.refused("backend_files.jax_export", "do not match the graph")


def test_a_jax_artifact_relabelled_numpy_without_its_files_runs_the_checked_graph(jax_art):

    def relabel(m):
        m["backend"] = "numpy"
        del m["backend_files"]

    jax_art.edit_manifest(relabel)
    jax_art.loads_same(rtol=1e-6)


# -- the literal printer: the only way attribute values enter generated source -----------------


def test_the_literal_printer_prints_schema_values_exactly():
    from bpir.backends.array_api import literal

    class EvilInt(int):
        def __repr__(self):
            return "__import__('os')"

    assert literal(True) == "True" and literal(np.bool_(False)) == "False"
    assert literal(-3) == "-3" and literal(EvilInt(3)) == "3" and literal(np.int64(7)) == "7"
    assert literal(0.1) == "0.1" and eval(literal(1e-300)) == 1e-300
    assert literal(float("inf")) == "float('inf')" and literal(float("-inf")) == "float('-inf')"
    assert literal(float("nan"), {"nan": "np.nan", "inf": "", "-inf": ""}) == "np.nan"
    assert literal("f32") == "'f32'"
    assert (
        literal((1,)) == "(1,)" and literal(()) == "()" and literal((1, (2.5, False))) == "(1, (2.5, False))"
    )


@pytest.mark.parametrize(
    "value", ["True); import os", "float32", b"f32", [1, 2], {"a": 1}, None, np.zeros(2), object(), (1, "x")]
)
def test_the_literal_printer_refuses_everything_else(value):
    from bpir.backends.array_api import dtype_of, literal

    with pytest.raises(TypeError, match="generated source"):
        literal(value)
    with pytest.raises(TypeError, match="generated source"):
        dtype_of(value, "np")


def test_names_and_locations_never_break_a_generated_line():
    from bpir.backends.numpy.backend import generate

    b = Builder("f\nimport os")
    x = b.input(TensorType((3,), "f32"), "x\nimport os")
    y = b.emit("reduce_sum", x, axes=(0,), keepdims=True, loc="m.py:1\r\u2028import os")
    g = b.finish([y])
    text = str(g)
    assert len(text.splitlines()) == 4 and str(bpir.parse(text)) == text
    source, _ = generate(g)
    assert "\r" not in source and "\u2028" not in source
    assert not any(line.lstrip().startswith("import os") for line in source.splitlines())
    compile(source, "<test>", "exec")


def test_the_reported_attack_a_jax_artifact_relabelled_numpy_with_code_in_keepdims(jax_art):
    def relabel(m):
        m["backend"] = "numpy"
        del m["backend_files"]

    jax_art.edit_manifest(relabel)
    payload = json.dumps(f"True)\n{jax_art.code}\n#")
    jax_art.write_graph(jax_art.graph.replace("keepdims=true", f"keepdims={payload}"))
    jax_art.refused("graph.bpir", "'keepdims': expected bool")
