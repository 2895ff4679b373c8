"""Full garbage collections are paused while bpir builds (``bpir.gc_pause``) and the process's
thresholds come back afterwards: after an error, and when builds overlap in threads."""

from __future__ import annotations

import gc
import threading

import numpy as np
import pytest

import bpir
from bpir.gc_pause import _NEVER, full_collections_paused


@pytest.fixture
def thresholds():
    before = gc.get_threshold()
    gc.set_threshold(600, 9, 8)  # distinct values, so a wrong restore shows
    yield (600, 9, 8)
    gc.set_threshold(*before)


def test_compiling_pauses_full_collections_and_restores_the_thresholds(thresholds):
    seen = []

    def f(x):
        seen.append(gc.get_threshold())  # runs while tracing
        return x * 2.0

    g = bpir.compile(f, backend="numpy", example_args=(np.ones(3),))
    assert seen == [(600, 9, _NEVER)] and gc.get_threshold() == thresholds
    lazy = bpir.compile(f, backend="numpy")
    np.testing.assert_array_equal(lazy(np.ones(4)), 2.0 * np.ones(4))  # traced on this first call
    assert seen[-1] == (600, 9, _NEVER) and gc.get_threshold() == thresholds
    np.testing.assert_array_equal(g(np.ones(3)), 2.0 * np.ones(3))


def test_a_failed_compile_restores_the_thresholds(thresholds):
    def bad(x):
        raise RuntimeError("user error while tracing")

    with pytest.raises(RuntimeError, match="user error"):
        bpir.compile(bad, backend="numpy", example_args=(np.ones(3),))
    assert gc.get_threshold() == thresholds


def test_overlapping_builds_in_threads_share_one_pause(thresholds):
    """A enters, B enters, A leaves (B still building: still paused), B leaves: restored."""
    a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()
    during = []

    def a():
        with full_collections_paused():
            a_in.set()
            b_in.wait(5)
        a_out.set()

    def b():
        a_in.wait(5)
        with full_collections_paused():
            b_in.set()
            a_out.wait(5)
            during.append(gc.get_threshold())

    threads = [threading.Thread(target=a), threading.Thread(target=b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert during == [(600, 9, _NEVER)] and gc.get_threshold() == thresholds
