"""Run the ``bpir`` command in a subprocess, as a user does, on the model files in cli_models/."""

from __future__ import annotations

import os
import subprocess
import sys

MODELS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cli_models")


def model(name: str) -> str:
    """``tests/cli_models/FILE.py:FN`` for ``"FILE:FN"``."""
    file, fn = name.split(":")
    return f"{os.path.join(MODELS, file)}.py:{fn}"


def bpir(*argv: str, expect: int = 0, env: dict | None = None, cwd: str | None = None, timeout: float = 600):
    """``python -m bpir.cli ARGV``; asserts the exit status and returns the finished process."""
    done = subprocess.run([sys.executable, "-m", "bpir.cli", *argv], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, cwd=cwd, timeout=timeout)  # fmt: skip
    assert done.returncode == expect, (
        f"exit {done.returncode}\nstdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    )
    return done
