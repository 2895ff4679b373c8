"""Ahead-of-time artifacts: written once, loaded in another process without re-tracing and
without pickle; corrupt or tampered artifacts are refused; a loaded function checks its
arguments like the original."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import bpir
from bpir.demo.models import init_mlp, mlp_batch, sgd_step

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def small_problem():
    params = init_mlp([4, 8, 3])
    x, labels = mlp_batch([4, 8, 3], 6)
    return params, x, labels


@pytest.fixture
def saved(tmp_path, backend):
    args = small_problem()
    f = bpir.compile(sgd_step, backend=backend, example_args=args)
    path = str(tmp_path / "step.bpir")
    f.save(path)
    return path, f, args


def test_artifact_loads_and_runs_in_a_fresh_process(saved):
    path, f, args = saved
    want_loss, want_params = f(*args)
    np.savez(os.path.join(os.path.dirname(path), "inputs.npz"), x=args[1], labels=args[2], **args[0])
    script = textwrap.dedent(f"""
        import sys, numpy as np, bpir
        sys.modules["bpir.demo"] = None  # the model's source must not be needed (no re-tracing)
        data = np.load({os.path.join(os.path.dirname(path), "inputs.npz")!r})
        params = {{k: data[k] for k in ("W1", "b1", "W2", "b2")}}
        f = bpir.load({path!r})
        loss, new = f(params, data["x"], data["labels"])
        print(repr(float(loss)))
    """)
    env = {**os.environ, "PYTHONPATH": ROOT}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert float(out.stdout.strip().splitlines()[-1]) == pytest.approx(float(want_loss), rel=1e-6)


def test_artifact_is_text_and_json_only(saved):
    path, _, _ = saved
    manifest = json.load(open(os.path.join(path, "manifest.json")))
    assert manifest["in_paths"][:2] == ["params['W1']", "params['b1']"]
    assert manifest["in_types"][-1] == "i64[6]"
    for name in os.listdir(path):
        with open(os.path.join(path, name), "rb") as fh:
            head = fh.read(2)
        assert head != b"\x80\x04" and head != b"\x80\x05", f"{name} looks like a pickle"


def test_tampered_graph_is_refused(saved):
    path, _, _ = saved
    graph_file = os.path.join(path, "graph.bpir")
    text = open(graph_file).read()
    open(graph_file, "w").write(text.replace("matmul", "add", 1))
    with pytest.raises(ValueError, match="corrupt artifact"):
        bpir.load(path)


def test_unknown_format_is_refused(saved):
    path, _, _ = saved
    manifest_file = os.path.join(path, "manifest.json")
    manifest = json.load(open(manifest_file))
    manifest["format"] = 999
    json.dump(manifest, open(manifest_file, "w"))
    with pytest.raises(ValueError, match="format 999"):
        bpir.load(path)


def test_loaded_function_checks_arguments_by_path(saved):
    path, _, (params, x, labels) = saved
    g = bpir.load(path)
    with pytest.raises(ValueError, match=r"x: expected shape \(6, 4\)"):
        g(params, x[:3], labels)
    with pytest.raises(TypeError, match=r"params\['W2'\]: expected dtype f32"):
        g({**params, "W2": params["W2"].astype(np.float64)}, x, labels)
