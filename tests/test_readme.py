"""README.md is true: every ```python block runs, and every `bpir` command it shows is run here."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
BLOCKS = re.findall(r"^```(\w+)\n(.*?)^```", README, flags=re.S | re.M)
PYTHON = [body for lang, body in BLOCKS if lang == "python"]
# each ```sh block of bpir commands (and python -m examples.* helpers) runs in order, as a user would
SCRIPTS = [[ln.strip() for ln in body.splitlines() if ln.strip().startswith(("bpir ", "python -m examples."))]
           for lang, body in BLOCKS if lang == "sh"]  # fmt: skip
SCRIPTS = [s for s in SCRIPTS if s and any(line.startswith("bpir ") for line in s)]
COMMANDS = [line for s in SCRIPTS for line in s if line.startswith("bpir ")]
INLINE = sorted(set(re.findall(r"`(bpir [a-z-]+)", README)))
BPIR = os.path.join(os.path.dirname(sys.executable), "bpir")


def test_the_readme_has_code_to_check():
    assert PYTHON and COMMANDS


@pytest.mark.parametrize("body", PYTHON, ids=[f"python-block-{i}" for i in range(len(PYTHON))])
def test_python_block_runs(body, tmp_path):
    out = subprocess.run(
        [sys.executable, "-c", body], cwd=tmp_path, capture_output=True, text=True, timeout=600
    )
    assert out.returncode == 0, out.stderr


@pytest.mark.parametrize("script", SCRIPTS, ids=[f"sh-block-{i}" for i in range(len(SCRIPTS))])
def test_commands_run(script, tmp_path):
    env = {**os.environ, "BPIR_CACHE_DIR": str(tmp_path / "cache")}
    for command in script:
        argv = shlex.split(command)
        exe = [BPIR, *argv[1:]] if argv[0] == "bpir" else [sys.executable, *argv[1:]]
        out = subprocess.run(exe, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
        assert out.returncode == 0, f"{command}\n{out.stderr[-3000:]}"


# commands too slow to run twice, with the test that runs them
RUN_ELSEWHERE = {"bpir tour": ("test_cli.py", "def test_tour_runs_end_to_end")}


@pytest.mark.parametrize("mention", INLINE)
def test_every_command_mentioned_is_run(mention):
    if mention in RUN_ELSEWHERE:
        path, test = RUN_ELSEWHERE[mention]
        assert test in open(os.path.join(ROOT, "tests", path), encoding="utf-8").read()
        return
    assert any(c.startswith(mention) for c in COMMANDS), (
        f"`{mention}` is in README.md but no ```sh block runs it"
    )


def test_links_stay_inside_the_repository():
    for target in re.findall(r"\]\(([^)]+)\)", README):
        if "://" not in target:
            assert not target.startswith(".."), target
            assert os.path.exists(os.path.join(ROOT, target.split("#")[0])), target
