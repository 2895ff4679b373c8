"""The one buffer-lifetime analysis (``bpir.lifetimes``): views alias their source's buffer, a
buffer lives until its last reader (a view's included), and slots are reused first-fit only by
buffers of the same key whose lifetimes do not overlap."""

from __future__ import annotations

import numpy as np
import pytest

import bpir
from bpir.lifetimes import Slots, last_reads, lifetimes


def _graph():
    def f(x):
        a = np.exp(x)  # node 0
        b = a.T  # node 1: a view of a
        c = np.tanh(b)  # node 2: the last reader of a's buffer, through the view
        return c * 2.0  # nodes 3 (constant), 4

    return bpir.trace(f, np.ones((2, 3), np.float32))


def test_a_view_lives_in_its_source_buffer_until_its_last_reader():
    g = _graph()
    life = lifetimes(g)
    x, (a, b, c, _, out) = g.inputs[0], (n.out for n in g.nodes)
    assert life.base[b] is a and life.base[a] is a and life.base[c] is c
    assert life.last_use[a] == 1 and life.last_use[b] == 2
    assert life.end[a] == 2  # the view's reader keeps the buffer alive
    assert life.end[x] == 0 and life.end[c] == 4
    assert life.last_use[out] == life.end[out] == len(g.nodes)  # results outlive the graph


def test_last_reads_takes_the_last_step():
    assert last_reads([["a", "b"], [], ["a"]]) == {"a": 2, "b": 0}


def test_slots_are_reused_first_fit_by_disjoint_lifetimes_of_one_key():
    s = Slots()
    assert s.take("f32[4]", 0, 2) == 0
    assert s.take("f32[4]", 1, 3) == 1  # overlaps slot 0's buffer (read at step 2)
    assert s.take("i64[4]", 3, 5) == 2  # another key never shares
    assert s.take("f32[4]", 3, 4) == 0  # slot 0 free after step 2: the first fit
    assert s.take("f32[4]", 4, 6) == 1  # slot 1 free after step 3; slot 0 busy until 4
    assert s.keys == ["f32[4]", "f32[4]", "i64[4]"]


def test_numba_and_cuda_workspaces_share_slots_by_lifetime():
    """Both backends assign workspace slots through the analysis: in exp -> tanh -> tanh -> mul
    (unfused: every step writes a buffer), the third buffer reuses the first one's slot."""
    from bpir.backends.numba.backend import Workspace

    def f(x):
        return np.tanh(np.tanh(np.exp(x))) * 2.0

    g = bpir.trace(f, np.ones(8, np.float32))
    ws = Workspace(g)
    e, t1, t2 = (n.out for n in g.nodes[:3])
    assert [ws.assign(e, (8,), 0), ws.assign(t1, (8,), 1), ws.assign(t2, (8,), 2)] == [
        "ws[0]",
        "ws[1]",
        "ws[0]",
    ]
    assert [a.shape for a in ws.allocate()] == [(8,), (8,)]

    pytest.importorskip("numba.cuda")
    from bpir.backends.cuda.backend import generate

    source = generate(g).source
    assert "ws[0]" in source and "ws[1]" in source and source.count("# slot ") == 2
