"""``bpir bench``, ``--profile``, ``bpir.profile`` and ``bpir check`` on user model files."""

from __future__ import annotations

import json

import numpy as np
import pytest
from cli_run import bpir, model

import bpir as bp
from bpir.bench.user import SCHEMA, disagreement

RESULT_KEYS = {"backend", "status", "max_rel_diff", "worst_output", "cold_compile_s", "cache_load_s", "median_s",
               "p25_s", "p75_s", "min_s", "ratio_to_fastest", "plan_peak_bytes", "times_s"}  # fmt: skip


def test_bench_json_plot_and_profile(tmp_path):
    pytest.importorskip("jax")
    from PIL import Image

    out, png = tmp_path / "b.json", tmp_path / "b.png"
    done = bpir("bench", model("gru:loss"), "--backends", "numpy,jax", "--repeat", "4", "--no-cold",
                "--json", str(out), "--plot", str(png), "--profile", "--top", "3")  # fmt: skip
    result = json.loads(out.read_text())
    assert result["schema"] == SCHEMA and result["model"].endswith("gru.py:loss") and result["repeat"] == 4
    assert (
        result["machine"]["cores"] >= 1
        and "numpy" in result["machine"]["versions"]
        and result["machine"]["cpu"]
    )
    rows = {r["backend"]: r for r in result["backends"]}
    assert set(rows) == {"numpy", "jax"}
    for r in rows.values():
        assert set(r) == RESULT_KEYS and r["status"] == "ok" and len(r["times_s"]) >= 4
        assert r["p25_s"] <= r["median_s"] <= r["p75_s"] and r["plan_peak_bytes"] > 0
        assert r["max_rel_diff"] < 1e-4
    assert min(r["ratio_to_fastest"] for r in rows.values()) == 1.0
    assert "warm median ms" in done.stdout and "profile on jax" in done.stdout
    assert "per-HLO-op times from jax.profiler are not collected" in done.stdout
    prof = result["profiles"]["numpy"]
    assert prof["nodes"] and abs(sum(n["share"] for n in prof["nodes"]) - 1) < 1e-6
    with Image.open(png) as im:
        im.load()
        assert im.size[0] > 100


def test_bench_cold_compile_in_fresh_processes(tmp_path):
    out = tmp_path / "b.json"
    bpir("bench", model("mlp:loss"), "--backends", "numpy", "--repeat", "2", "--json", str(out))
    (r,) = json.loads(out.read_text())["backends"]
    assert r["cold_compile_s"] > 0 and r["cache_load_s"] > 0


def test_a_disagreeing_backend_is_not_timed():
    x = np.linspace(1, 2, 100, dtype=np.float32)
    d, where, tol = disagreement((x, {"w": x}), (x, {"w": x * (1 + np.float32(1e-6))}))
    assert d <= tol
    d, where, tol = disagreement((x, {"w": x}), (x, {"w": x * 1.01}))
    assert where == "out[1]['w']" and d == pytest.approx(0.01, rel=1e-3) and d > tol
    d, where, _ = disagreement(np.arange(3), np.array([0, 1, 3]))
    assert d == 1.0


def test_profile_times_each_node():
    rng = np.random.default_rng(0)
    w, x = rng.standard_normal((16, 16)).astype(np.float32), rng.standard_normal((32, 16)).astype(np.float32)
    report = bp.profile(lambda w, x: np.tanh(x @ w).sum(), w, x, repeat=3)
    ops = [r.op for r in report.nodes]
    assert "matmul" in ops and "fused" in ops
    assert all(r.seconds > 0 and r.loc for r in report.nodes)
    mm = next(r for r in report.nodes if r.op == "matmul")
    assert mm.bytes_moved == (16 * 16 + 32 * 16 + 32 * 16) * 4
    assert report.bandwidth_gbs > 0 and "matmul" in report.text(2)


def test_check_table_and_failure_status(tmp_path):
    done = bpir("check", model("cnn:loss"), "--backends", "numpy")
    for path in ("p['k']", "p['kb']", "p['W']", "p['b']"):
        assert path in done.stdout
    assert "ok (rtol" in done.stdout
    wrong = tmp_path / "wrong.py"
    wrong.write_text(
        "import numpy as np\nimport bpir\n\n"
        "@bpir.custom_vjp\ndef f(x):\n    return (x * x).sum()\n\n"
        "f.defvjp(lambda x: ((x * x).sum(), (x,)), lambda r, g: (g * r[0],))  # wrong: 2x missing\n\n"
        "def example_args():\n    return (np.arange(1.0, 4.0),)\n"
    )
    done = bpir("check", f"{wrong}:f", "--backends", "numpy", expect=1)
    assert "FAIL: gradient" in done.stdout  # (rich may wrap the rest of the message)
