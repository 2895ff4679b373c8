"""The ``bpir`` command line: the tour, IR at each stage, pass dumps, the backend list."""

from __future__ import annotations

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
