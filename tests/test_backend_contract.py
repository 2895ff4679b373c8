"""The typed seams between the core and the backends: ``warm_up`` compiles ahead through the
``CompilesAhead`` protocol (jax) and runs once on zeros otherwise."""

from __future__ import annotations

import numpy as np
import pytest

import bpir
from bpir.backend_registry import CompilesAhead
from bpir.compiled import Executable


def _double(x):
    return x * 2.0


class _Program:
    """A backend program that compiles ahead: ``warm_up`` must not call it."""

    def __init__(self):
        self.compiled = self.called = 0

    def __call__(self, *args):
        self.called += 1
        return args

    def compile_ahead(self) -> None:
        self.compiled += 1


def _executable(run) -> Executable:
    f = bpir.compile(_double, backend="numpy", example_args=(np.ones(3, np.float32),))
    ex = f.executable
    return Executable(ex.graph, run, ex.source, ex.in_tree, ex.out_tree, ex.in_paths, ex.in_types)


def test_warm_up_compiles_ahead_without_calling():
    program = _Program()
    assert isinstance(program, CompilesAhead)
    _executable(program).warm_up()
    assert (program.compiled, program.called) == (1, 0)


def test_warm_up_runs_once_on_zeros_otherwise():
    seen = []
    _executable(lambda *a: seen.append([x.copy() for x in a]) or a).warm_up()
    assert len(seen) == 1 and np.array_equal(seen[0][0], np.zeros(3, np.float32))


def test_the_jax_program_compiles_ahead():
    pytest.importorskip("jax")
    f = bpir.compile(_double, backend="jax", example_args=(np.ones(3, np.float32),))
    assert isinstance(f.executable.run, CompilesAhead)
    assert not isinstance(bpir.compile(_double, example_args=(np.ones(3),)).executable.run, CompilesAhead)
