"""``bpir show``, its errors, and ``--print-after`` checking, driven as a subprocess on user files."""

from __future__ import annotations

import os

import pytest
from cli_run import MODELS, bpir, model

import bpir as bp


@pytest.mark.parametrize(
    ("name", "stages"),
    [("mlp:loss", ("traced", "backward", "optimized")), ("cnn:loss", ("backward",)), ("gru:loss", ("optimized",)),
     ("adam:step", ("optimized",))],
)  # fmt: skip
def test_show_stages_parse_back(name, stages):
    for stage in stages:
        out = bpir("show", model(name), "--stage", stage).stdout
        graph = bp.parse(out)
        assert str(bp.parse(str(graph))) == str(graph)
        if stage == "backward":
            assert "residual %" in out and "cotangent %" in out


def test_show_optimized_reports_passes_and_memory_and_source():
    done = bpir("show", model("mlp:loss"), "--stage", "optimized", "--print-after", "fusion")
    assert "= fused " in done.stdout
    assert "IR after fusion" in done.stderr and "peak_bytes" in done.stderr and "cse" in done.stderr
    src = bpir("show", model("mlp:loss"), "--stage", "source", "--backend", "numpy").stdout
    assert "def loss(" in src and "np.matmul" in src
    remat = bpir("show", model("mlp:loss"), "--stage", "backward", "--remat").stdout
    plain = bpir("show", model("mlp:loss"), "--stage", "backward").stdout
    assert remat.count("residual %") < plain.count("residual %")


def test_user_errors_are_one_line_with_status_2(tmp_path):
    mlp = os.path.join(MODELS, "mlp.py")
    with open(mlp) as fh:
        branch_line = next(i for i, line in enumerate(fh, 1) if "if x.sum() > 0" in line)
    cases = [
        ((os.path.join(str(tmp_path), "nope.py") + ":f",), "nope.py: no such file"),
        (
            (mlp + ":missing",),
            "no function 'missing' (functions there: branchy, branchy_args, example_args, loss)",
        ),
        (
            (os.path.join(MODELS, "adam.py") + ":no_example_here", "--example", "absent"),
            "no absent() function",
        ),
        (
            (mlp + ":branchy", "--example", "branchy_args"),
            f"bool() of a traced value bool[] at mlp.py:{branch_line}",
        ),
        ((mlp,), "expected FILE.py:FN"),
    ]
    for argv, message in cases:
        err = bpir("show", *argv, expect=2).stderr
        assert message in err, err
        assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    err = bpir("show", mlp + ":branchy", "--example", "branchy_args", "--traceback", expect=2).stderr
    assert "Traceback" in err and "TraceError" in err


def test_no_example_args_is_named(tmp_path):
    path = tmp_path / "plain.py"
    path.write_text("def f(x):\n    return x\n")
    err = bpir("show", f"{path}:f", expect=2).stderr
    assert "no example_args() function" in err


def test_print_after_a_mistyped_pass_names_the_passes():
    for argv in (("ir", "--print-after", "fuson"), ("show", model("mlp:loss"), "--print-after", "fuson")):
        err = bpir(*argv, expect=2).stderr
        assert "unknown pass 'fuson'" in err and "fusion" in err and "cse" in err


def test_optimize_refuses_unknown_print_after_name():
    from bpir.passes import manager

    g = bp.trace(lambda x: x * 2.0, __import__("numpy").ones(3))
    with pytest.raises(ValueError, match="unknown pass 'simplfy'.*simplify"):
        manager.optimize(g, print_after={"simplfy"})
