"""Mutation fuzzing of printed graphs: a random graph's text with tokens dropped, duplicated,
swapped, or numbers, types and op names changed. The only allowed outcomes are a clear
``ParseError`` (line and column) or ``VerifyError``, or a graph that parses, verifies and runs
on the NumPy backend: outputs of the declared types, the caller's inputs left untouched, and
the same values after the default optimization pipeline.

Case counts are modest by default (seeded); BPIR_FUZZ_EXAMPLES raises them."""

from __future__ import annotations

import os
import re
import warnings

import numpy as np
from graph_gen import fuzz_examples, graphs, random_inputs
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import bpir
from bpir.backend_registry import backend_module
from bpir.errors import ParseError, VerifyError
from bpir.registry import OPS
from bpir.verifier import verify

TOKEN = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*|-?\d+(?:\.\d*)?(?:e[+-]?\d+)?|\s+|.", re.S)
NUMBERS = ["0", "1", "-1", "2", "3.5", "-3", "1e308", "inf", "nan", "99999999999999999999", "0.0"]
TYPES = ["f16", "f32", "f64", "i32", "i64", "bool", "u8", "f32[3]", "f64[]"]
MUTATIONS = ["drop", "duplicate", "swap", "number", "type", "op", "insert"]


@st.composite
def mutated_texts(draw) -> tuple[str, str]:
    """(original text, text after one to three token mutations)."""
    text = str(draw(graphs(max_nodes=8)))
    tokens = TOKEN.findall(text)
    assert "".join(tokens) == text
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(MUTATIONS))
        i = draw(st.integers(0, len(tokens) - 1))
        if kind == "drop":
            del tokens[i]
        elif kind == "duplicate":
            tokens.insert(i, tokens[i])
        elif kind == "swap":
            j = min(i + 1, len(tokens) - 1)
            tokens[i], tokens[j] = tokens[j], tokens[i]
        elif kind == "insert":
            tokens.insert(
                i, draw(st.sampled_from(["%", ",", "(", ")", "{", "}", "[", "]", ":", "=", "\n", "@"]))
            )
        else:
            pattern = {"number": r"-?\d", "type": r"(f|i)\d+|bool", "op": r"[a-z_]+$"}[kind]
            where = [j for j, t in enumerate(tokens) if re.match(pattern, t)]
            if where:
                j = draw(st.sampled_from(where))
                pool = {"number": NUMBERS, "type": TYPES, "op": sorted(OPS)}[kind]
                tokens[j] = draw(st.sampled_from(pool))
    return text, "".join(tokens)


def _check_outcome(text: str) -> None:
    try:
        graph = bpir.parse(text)
    except ParseError as e:
        assert e.line >= 1 and e.column >= 1 and str(e).startswith(f"line {e.line}, column {e.column}: ")
        return
    try:
        verify(graph)
    except VerifyError:
        return
    args = random_inputs(graph, seed=2)
    before = [a.copy() for a in args]
    run, _ = backend_module("numpy").compile_graph(graph)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # overflow / invalid in mutated constants
        outs = [np.asarray(r) for r in run(*args)]
        for a, b in zip(args, before):
            np.testing.assert_array_equal(a, b, err_msg="an input was overwritten")
        for o, v in zip(outs, graph.outputs, strict=True):
            assert o.shape == v.shape and o.dtype == v.type.np_dtype, (o.shape, o.dtype, str(v.type))
        run_opt, _ = backend_module("numpy").compile_graph(bpir.optimize(graph))
        for o, p in zip(outs, run_opt(*args)):
            np.testing.assert_allclose(np.asarray(p), o, rtol=1e-9, atol=1e-9, equal_nan=True)


@settings(max_examples=fuzz_examples(60), deadline=None, derandomize="BPIR_FUZZ_EXAMPLES" not in os.environ,
          database=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])  # fmt: skip
@given(mutated_texts())
def test_mutated_graph_text_is_refused_clearly_or_runs_correctly(case):
    original, text = case
    try:
        _check_outcome(text)
    except Exception as e:  # report the text that got there
        raise AssertionError(f"{type(e).__name__}: {e}\n--- mutated text ---\n{text}") from e
