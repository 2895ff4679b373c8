"""The numba backend's library kernels (conv, pooling, random bits) carry their machine code like
generated kernels: a second process loads them from the bpir cache, and an artifact carries them
to a new machine, in the checked JSON + object format (never Numba's pickled cache). Machine code
built from another text of a library module, or claimed for a function that is not one of its
kernels, is never loaded. Each check runs in fresh processes, counted through
``kernel_cache.STATS``; the model is a 2x2 max pool (one library kernel, quick to compile)."""

from __future__ import annotations

import hashlib
import importlib
import inspect
import json
import os
import re
import shutil
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
X = np.linspace(-1, 1, 2 * 3 * 4 * 6, dtype=np.float32).reshape(2, 3, 4, 6)[..., ::-1].copy()


def model(x):
    return np.tanh(bpir.nn.max_pool2d(x, 2) * 2.0) - x[:, :, ::2, ::2]  # the pool, then one loop kernel


def _reference(x):
    n, c, h, w = x.shape
    return np.tanh(x.reshape(n, c, h // 2, 2, w // 2, 2).max(axis=(3, 5)) * 2.0) - x[:, :, ::2, ::2]


RUN = textwrap.dedent("""
    import json, sys
    import numpy as np, bpir
    from bpir.backends.numba import kernel_cache
    sys.path.insert(0, sys.argv[3])
    from test_numba_library import X, model
    if sys.argv[1].startswith("compile"):
        if sys.argv[1] == "compile-after-float64":  # the process holds another overload too
            from bpir.backends.numba import windows
            windows.max_pool2d(X.astype(np.float64), (2, 2), (2, 2), (0, 0))
        f = bpir.compile(model, backend="numba", example_args=(X,))
        if sys.argv[2]:
            f.save(sys.argv[2])
    else:
        f = bpir.load(sys.argv[2], machine_code=True)
    out = f(X)
    print(json.dumps({"stats": dict(kernel_cache.STATS), "out": out.tolist()}))
""")


def _run(how: str, cache_dir, folder="") -> dict:
    env = {**os.environ, "BPIR_CACHE_DIR": str(cache_dir), "PYTHONPATH": ROOT}
    args = [sys.executable, "-c", RUN, how, str(folder), os.path.join(ROOT, "tests")]
    out = subprocess.run(args, env=env, capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-3000:]
    got = json.loads(out.stdout.splitlines()[-1])
    np.testing.assert_allclose(np.asarray(got["out"], np.float32), _reference(X), rtol=1e-6, atol=1e-6)
    return got["stats"]


def _library_stats(stats: dict) -> dict:
    """Library kernels compiled and loaded (whether this process or a compile worker compiled
    them is ``test_numba_compile``'s concern)."""
    return {k: v for k, v in stats.items() if k in ("library_compiled", "library_loaded")}


def test_library_kernels_call_only_their_own_modules_compiled_functions():
    """Their machine code is named by their module's text alone, so nothing else may go into it."""
    from bpir.backends.numba import library_kernels
    from numba.core.registry import CPUDispatcher

    for name in library_kernels.NAMES:
        module = importlib.import_module(name)
        for f in vars(module).values():
            if not (isinstance(f, CPUDispatcher) and f.py_func.__module__ == name):
                continue
            for used in f.py_func.__code__.co_names:
                target = f.py_func.__globals__.get(used)
                if isinstance(target, CPUDispatcher):
                    assert target.py_func.__module__ == name, (f.py_func.__name__, used)
                    # a callee not inlined returns a value, so it is never carried on its own and a
                    # caller compiled later links its code as usual
                    returns = re.search(r"\breturn\s+\S", inspect.getsource(target.py_func))
                    assert target.targetoptions.get("inline") == "always" or returns, used
        assert library_kernels.dispatchers(module), name  # every library module has kernels


def test_a_second_process_loads_library_kernels_from_the_cache(tmp_path):
    first = _run("compile", tmp_path / "cache")
    assert _library_stats(first) == {"library_compiled": 1}  # the 2x2 tile pool, float32
    second = _run("compile", tmp_path / "cache")
    assert _library_stats(second) == {"library_loaded": 1}
    assert "compiled" not in second


def test_library_machine_code_altered_in_the_cache_is_compiled_again(tmp_path):
    _run("compile", tmp_path / "cache")
    pycache = tmp_path / "cache" / "__pycache__"
    (objects,) = [p for p in pycache.iterdir() if p.name.startswith("bpir_numba_library_")
                  and p.name.endswith(".objects.bin")]  # fmt: skip
    data = bytearray(objects.read_bytes())
    data[len(data) // 2] ^= 0x01
    objects.write_bytes(bytes(data))
    assert _library_stats(_run("compile", tmp_path / "cache")) == {"library_compiled": 1}


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    root = tmp_path_factory.mktemp("library-art")
    _run("compile-after-float64", root / "cache", root / "art")
    return root / "art"


def test_an_artifact_carries_its_library_kernels_to_a_new_machine(saved, tmp_path):
    index = json.loads((saved / "kernels.json").read_text())
    assert set(index["libraries"]) == {f"bpir.backends.numba.{m}" for m in ("windows", "conv", "pool_tiles")}
    # the one overload the graph calls, not the float64 one the saving process also compiled
    carried = [(e["function"], e["args"][0][1]) for e in index["kernels"] if e["module"].startswith("bpir.")]
    assert carried == [("max_pool_2x2", "float32")]
    stats = _run("load", tmp_path / "empty-cache", saved)
    assert (
        stats == {"loaded": len(index["kernels"]) - 1, "library_loaded": 1} and stats["loaded"]
    )  # none compiled


def test_an_artifact_saved_again_before_any_call_keeps_its_library_kernels(saved, tmp_path):
    f = bpir.load(str(saved), machine_code=True)
    f.save(str(tmp_path / "again"))
    index = json.loads((tmp_path / "again" / "kernels.json").read_text())
    carried = [(e["function"], e["args"][0][1]) for e in index["kernels"] if e["module"].startswith("bpir.")]
    assert carried == [("max_pool_2x2", "float32")]


def test_a_format_1_index_still_loads_its_generated_kernels(saved, tmp_path):
    folder = _copy(saved, tmp_path)
    index = json.loads((folder / "kernels.json").read_text())
    generated = [e for e in index["kernels"] if e["module"].startswith("bpir_numba_kernel_")]
    for e in generated:
        del e["function"]
    _rehash(
        folder, {"format": 1, "versions": index["versions"], "target": index["target"], "kernels": generated}
    )
    stats = _run("load", tmp_path / "empty-cache", folder)
    assert stats == {"loaded": len(generated), "library_compiled": 1}


def _copy(saved, tmp_path):
    folder = tmp_path / "art"
    shutil.copytree(saved, folder)
    return folder


def _rehash(folder, index) -> None:
    """Rewrite the kernel index and recompute every hash, as an attacker would."""
    manifest = json.loads((folder / "manifest.json").read_text())
    files = manifest["backend_files"]
    text = json.dumps(index)
    (folder / files["kernels"]).write_text(text)
    files["kernels_sha256"] = hashlib.sha256(text.encode()).hexdigest()
    manifest["manifest_sha256"] = canonical_sha256(manifest)
    (folder / "manifest.json").write_text(json.dumps(manifest))


def _library_entry(index: dict) -> dict:
    return next(e for e in index["kernels"] if e["module"].startswith("bpir."))


@pytest.mark.parametrize(
    "edit, words",
    [
        (lambda i: _library_entry(i).update(function="_native"), "is no kernel of module"),
        (lambda i: _library_entry(i).update(function="np"), "is no kernel of module"),
        (lambda i: _library_entry(i).update(function="_first_max_2x2"), "is no kernel of module"),  # inlined
        (lambda i: _library_entry(i).update(module="bpir.backends.numba.random"), "no kernel of the graph"),
        (lambda i: _library_entry(i).update(module="bpir.backends.numba.aot"), "not a plain name"),
        (lambda i: i["libraries"].update({"os": "0" * 64}), "libraries must map"),
        (lambda i: i["libraries"].update({"bpir.backends.numba.conv": "not a digest"}), "libraries must map"),
    ],
)
def test_a_library_entry_disagreeing_with_bpir_is_refused(saved, tmp_path, edit, words):
    folder = _copy(saved, tmp_path)
    index = json.loads((folder / "kernels.json").read_text())
    edit(index)
    _rehash(folder, index)
    with pytest.raises(ArtifactError, match=words):
        bpir.load(str(folder), machine_code=True)


def test_library_machine_code_from_another_text_of_the_module_is_not_loaded(saved, tmp_path):
    from bpir.backends.numba.aot import MachineCodeWarning

    folder = _copy(saved, tmp_path)
    index = json.loads((folder / "kernels.json").read_text())
    index["libraries"]["bpir.backends.numba.pool_tiles"] = "0" * 64  # built from another pool_tiles.py
    _rehash(folder, index)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        f = bpir.load(str(folder), machine_code=True)
    assert any(issubclass(w.category, MachineCodeWarning) for w in caught)
    np.testing.assert_allclose(f(X), _reference(X), rtol=1e-6, atol=1e-6)
