"""Numba artifacts carry the kernels' machine code: a fresh process with an empty cache loads it
(``machine_code=True``) and compiles nothing; without it, or on another Numba/CPU, the kernels
compile from the checked graph. A kernel file edited without its hash, or an index entry that
disagrees with the graph (hashes recomputed), is refused before any machine code is loaded."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

import bpir
from bpir.manifest import ArtifactError, canonical_sha256

pytestmark = pytest.mark.skipif("numba" not in bpir.backends(), reason="numba not installed")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
X = np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4)
W = np.linspace(-1, 1, 20, dtype=np.float32).reshape(4, 5)


def model(x, w):
    h = np.tanh(x * 1.5 + 0.25) @ w
    return np.sum(h * h, axis=1), np.exp(-h)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    folder = tmp_path_factory.mktemp("numba-art") / "art"
    f = bpir.compile(model, backend="numba", example_args=(X, W))
    f.save(str(folder))
    return folder, f(X, W)


LOAD = textwrap.dedent("""
    import json, sys
    import numpy as np, bpir
    from bpir.backends.numba import kernel_cache
    f = bpir.load(sys.argv[1], machine_code=sys.argv[2] == "1")
    x = np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4)
    w = np.linspace(-1, 1, 20, dtype=np.float32).reshape(4, 5)
    out = f(x, w)
    print(json.dumps({"stats": dict(kernel_cache.STATS), "out": [o.tolist() for o in out]}))
""")


def _load_in_fresh_process(folder, cache_dir, machine_code: bool) -> dict:
    env = {**os.environ, "BPIR_CACHE_DIR": str(cache_dir), "PYTHONPATH": ROOT}
    args = [sys.executable, "-c", LOAD, str(folder), "1" if machine_code else "0"]
    out = subprocess.run(args, env=env, capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.splitlines()[-1])


def test_machine_code_loads_in_a_fresh_process_without_compiling(saved, tmp_path):
    folder, want = saved
    index = json.loads((folder / "kernels.json").read_text())
    n = len(index["kernels"])
    assert n >= 2  # the loop kernels before and after the matmul
    got = _load_in_fresh_process(folder, tmp_path / "empty-cache", machine_code=True)
    assert got["stats"] == {"loaded": n}  # nothing compiled
    for g, w in zip(got["out"], want):
        np.testing.assert_array_equal(np.asarray(g, np.float32), w)  # the same machine code


def test_without_machine_code_the_graph_is_compiled(saved, tmp_path):
    folder, want = saved
    n = len(json.loads((folder / "kernels.json").read_text())["kernels"])
    got = _load_in_fresh_process(folder, tmp_path / "empty-cache", machine_code=False)
    assert got["stats"] == {"compiled": n}
    for g, w in zip(got["out"], want):
        np.testing.assert_allclose(np.asarray(g, np.float32), w, rtol=1e-6)


def _copy(saved, tmp_path):
    import shutil

    folder = tmp_path / "art"
    shutil.copytree(saved[0], folder)
    return folder


def _rehash(folder, index=None, blob=None) -> None:
    """Rewrite the kernel files and recompute every hash, as an attacker would."""
    manifest = json.loads((folder / "manifest.json").read_text())
    files = manifest["backend_files"]
    if index is not None:
        text = json.dumps(index)
        (folder / files["kernels"]).write_text(text)
        files["kernels_sha256"] = hashlib.sha256(text.encode()).hexdigest()
    if blob is not None:
        (folder / files["objects"]).write_bytes(blob)
        files["objects_sha256"] = hashlib.sha256(blob).hexdigest()
    manifest["manifest_sha256"] = canonical_sha256(manifest)
    (folder / "manifest.json").write_text(json.dumps(manifest))


@pytest.mark.parametrize("name", ["kernels.bin", "kernels.json"])
def test_a_kernel_file_edited_without_its_hash_is_refused(saved, tmp_path, name):
    folder = _copy(saved, tmp_path)
    data = bytearray((folder / name).read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit of the machine code or of the index
    (folder / name).write_bytes(bytes(data))
    for machine_code in (True, False):
        with pytest.raises(ArtifactError, match="does not match the manifest's hash"):
            bpir.load(str(folder), machine_code=machine_code)


def _edited_entry(**fields):
    def edit(entry):
        entry.update(fields)

    return edit


@pytest.mark.parametrize(
    "edit, words",
    [
        (_edited_entry(module="bpir_numba_kernel_" + "0" * 24), "no kernel of the graph"),
        (_edited_entry(module="os"), "not a plain name"),
        (_edited_entry(uid=12345), "mangled names disagree"),
        (_edited_entry(args=[["array", "float64", 2, "C", True, True]] * 3), "mangled names disagree"),
        (_edited_entry(args=[["object", "x"]]), "not a kernel argument type"),
        (_edited_entry(object=[0, 1 << 40]), "inside the objects file"),
        (_edited_entry(parallel="yes"), "true or false"),
        (_edited_entry(referenced_envs=[["os", "_ZN08NumbaEnv"]]), "neither the kernel's nor Numba's"),
        (_edited_entry(referenced_envs=[["numba.evil_module", "_ZN08NumbaEnv"]]), "neither the kernel's"),
        (_edited_entry(referenced_envs=[["numba.np.arrayobj.x", "_ZN08NumbaEnv"]]), "neither the kernel's"),
        (lambda e: e.pop("library"), "exactly the fields"),
    ],
)
def test_an_index_entry_disagreeing_with_the_graph_is_refused(saved, tmp_path, edit, words):
    folder = _copy(saved, tmp_path)
    index = json.loads((folder / "kernels.json").read_text())
    edit(index["kernels"][0])
    _rehash(folder, index=index)
    with pytest.raises(ArtifactError, match=words):
        bpir.load(str(folder), machine_code=True)
    assert "numba.evil_module" not in sys.modules


def test_machine_code_for_another_cpu_is_not_loaded(saved, tmp_path):
    folder = _copy(saved, tmp_path)
    index = json.loads((folder / "kernels.json").read_text())
    index["target"][1] = "some-other-cpu"
    _rehash(folder, index=index)
    from bpir.backends.numba.aot import MachineCodeWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        f = bpir.load(str(folder), machine_code=True)
    assert any(
        issubclass(w.category, MachineCodeWarning) and "some-other-cpu" in str(w.message) for w in caught
    )
    for g, w in zip(f(X, W), saved[1]):
        np.testing.assert_allclose(g, w, rtol=1e-6)


PARALLEL = textwrap.dedent("""
    import json, sys
    import numpy as np, bpir
    from bpir.backends.numba import kernel_cache
    from bpir.demo.models import chain
    big = np.linspace(-4, 4, 1 << 21, dtype=np.float32)  # large enough for a parallel loop
    f = bpir.load(sys.argv[1], machine_code=True)
    error = float(np.max(np.abs(f(big) - chain(big.astype(np.float64)))))
    print(json.dumps({"stats": dict(kernel_cache.STATS), "error": error}))
""")


def test_parallel_kernels_carry_their_machine_code(tmp_path):
    from bpir.demo.models import chain

    big = np.linspace(-4, 4, 1 << 21, dtype=np.float32)
    f = bpir.compile(chain, backend="numba", example_args=(big,))
    assert any("prange(" in open(m.__file__).read() for m in f._current().run.kernel_modules)
    f.save(str(tmp_path / "art"))
    index = json.loads((tmp_path / "art" / "kernels.json").read_text())
    assert index["kernels"] and all(e["parallel"] for e in index["kernels"])
    env = {**os.environ, "BPIR_CACHE_DIR": str(tmp_path / "empty"), "PYTHONPATH": ROOT}
    out = subprocess.run([sys.executable, "-c", PARALLEL, str(tmp_path / "art")], env=env, capture_output=True,
                         text=True, cwd=ROOT)  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    got = json.loads(out.stdout.splitlines()[-1])
    assert got["stats"] == {"loaded": len(index["kernels"])} and got["error"] < 1e-6
