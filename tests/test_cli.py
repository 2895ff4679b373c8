"""The ``bpir`` command line: the tour, IR at each stage, pass dumps, the backend list."""

from __future__ import annotations

import numpy as np
import pytest

import bpir
from bpir.cli import main


def run_cli(capsys, *argv) -> tuple[str, str]:
    assert main(list(argv)) == 0
    out = capsys.readouterr()
    return out.out, out.err


@pytest.mark.parametrize(
    ("stage", "expect"),
    [
        ("forward", "func @mlp_loss("),
        ("step", "func @sgd_step("),
        ("backward", "residual %r0"),
        ("optimized", "= fused "),
    ],
)
def test_ir_stages(capsys, stage, expect):
    out, _ = run_cli(capsys, "ir", "--stage", stage)
    assert expect in out
    assert bpir.parse(out.strip()) is not None


def test_ir_print_after_a_pass_and_report(capsys):
    _, err = run_cli(capsys, "ir", "--print-after", "cse")
    assert "IR after cse" in err and "IR after fusion" not in err
    assert "fusion" in err and "bytes_moved" in err


def test_backward_remat_saves_less(capsys):
    plain, _ = run_cli(capsys, "ir", "--stage", "backward")
    remat, _ = run_cli(capsys, "ir", "--stage", "backward", "--remat")
    assert remat.count("residual %") < plain.count("residual %")


def test_backends_lists_numpy(capsys):
    out, _ = run_cli(capsys, "backends")
    assert "numpy" in out.split()


def test_tour_runs_end_to_end(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out, _ = run_cli(capsys, "tour")
    for heading in ("1. A textbook MLP", "2. The backward graph", "3. One SGD training step",
                    "4. Compiled on each backend", "5. Gradients checked", "6. Ahead of time"):  # fmt: skip
        assert heading in out
    assert "loaded artifact loss" in out


def test_bench_cpu_small_runs_every_peer(capsys):
    pytest.importorskip("jax")
    out, _ = run_cli(capsys, "bench", "cpu", "--small")
    rows = {line.split("  ")[0].strip(): line.split() for line in out.splitlines()}
    for row in ("small MLP 784-128-10 b128", "chain 1,048,576 float32", "chain 1,048,576 float64"):
        cells = rows[row]
        assert float(cells[-3]) > 0  # numba/jax ratio, from four timed peers that agreed
    assert "second process, disk cache:" in out


def test_bench_conv_rows_time_forward_and_weight_gradient():
    from bpir.bench.cpu_nets import CONV_LAYERS, conv_rows

    rows = conv_rows(rounds=1, per_round=1)
    names = [f"{layer} {kind}" for layer in CONV_LAYERS for kind in ("forward", "weight gradient")]
    assert [row[0] for row in rows] == names
    for _, time, *figures in rows:
        assert time.endswith(" ms") and min(float(time[:-3]), *map(float, figures)) > 0


def test_bench_new_model_run_keeps_only_the_library_kernels_in_the_cache(tmp_path):
    """Between the bench's new-machine and new-model compiles, the cache keeps the library
    kernels' stand-ins and machine code and nothing else."""
    from bpir.bench.cpu_nets import _keep_library_kernels

    kept = [
        "bpir_numba_library_0a.py",
        "bpir_numba_library_0a.py.seal.json",
        "__pycache__/bpir_numba_library_0a.objects.bin",
        "__pycache__/bpir_numba_library_0a.objects.json",
    ]
    dropped = ["bpir_numba_kernel_1b.py", "bpir_numba_kernel_1b.py.seal.json", "bpir_numpy_2c.py",
               "__pycache__/bpir_numba_kernel_1b.objects.bin", "__pycache__/bpir_numba_kernel_1b.cpython-311.pyc"]  # fmt: skip
    (tmp_path / "__pycache__").mkdir()
    for name in kept + dropped:
        (tmp_path / name).write_text("x")
    _keep_library_kernels(str(tmp_path))
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file()) == sorted(kept)


def test_bench_refuses_peers_that_disagree():
    from bpir.bench.cpu import check_agreement

    x = np.linspace(1, 2, 100, dtype=np.float32)
    check_agreement("same", [x, x * (1 + np.float32(1e-7))], exact_peers=2)
    with pytest.raises(SystemExit, match="peer 1 disagrees"):
        check_agreement("off", [x, x * (1 + np.float32(1e-5))], exact_peers=2)
    # past exact_peers only the first leaf (the loss) is compared
    check_agreement("tail", [(x, x), (x, -x)], exact_peers=1)
    with pytest.raises(SystemExit, match="leaf 1"):
        check_agreement("tail", [(x, x), (x, -x)], exact_peers=2)
