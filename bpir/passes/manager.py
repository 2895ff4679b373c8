"""The pass manager: runs Graph -> Graph passes, verifies after each (tests, BPIR_VERIFY=1),
prints after each (BPIR_DUMP=after-all, or after the named passes), records timings and, for
passes made of named rewrite rules, how often each rule fired; rules can be switched off."""

from __future__ import annotations

import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Collection
from dataclasses import dataclass, field

from ..ir import Graph
from ..verifier import verify, verify_enabled
from .cse import cse
from .dce import dce
from .fold import fold
from .fusion import fusion
from .inline_calls import inline_calls
from .rewrite import RulePass
from .simplify import simplify

Pass = Callable[[Graph], Graph]


def default_pipeline() -> list[tuple[str, Pass]]:
    return [
        ("inline_calls", inline_calls),
        ("simplify", simplify),
        ("fold", fold),
        ("cse", cse),
        ("dce", dce),
        ("fusion", fusion),
        ("dce", dce),
    ]


@dataclass
class PassRecord:
    """One pass run: its time, node counts and (a rule pass) each fired rule's count."""

    name: str
    seconds: float
    nodes_before: int
    nodes_after: int
    rules: dict[str, int] = field(default_factory=dict)


@dataclass
class PassReport:
    """What optimize did: one record per pass run, in order (printed as a table)."""

    records: list[PassRecord] = field(default_factory=list)

    def rule_counts(self) -> Counter:
        """How often each rewrite rule fired, over all the passes run."""
        total: Counter = Counter()
        for r in self.records:
            total.update(r.rules)
        return total

    def __str__(self) -> str:
        rows = [f"{'pass':<16} {'ms':>8} {'nodes':>12}"]
        for r in self.records:
            rows.append(f"{r.name:<16} {r.seconds * 1e3:8.2f} {r.nodes_before:>5} -> {r.nodes_after:<5}")
            rows.extend(f"  {rule:<22} {count:>5}x" for rule, count in r.rules.items())
        return "\n".join(rows)


def optimize(
    graph: Graph,
    passes=None,
    print_after: set[str] | None = None,
    verify_each: bool | None = None,
    report: PassReport | None = None,
    disable_rules: Collection[str] | None = None,
) -> Graph:
    """Run ``passes`` (names or (name, fn) pairs; the default pipeline when None); each pass's
    time and node counts (and rule passes' fired rules) are recorded into ``report`` when one is
    given. ``disable_rules`` names rewrite rules (e.g. ``"double_transpose"``) not to apply.

    Python's cyclic garbage collector stays on: pausing it (``gc.disable()`` ... ``gc.enable()``
    around this call) makes graphs of 100k nodes optimize 15-35% faster (no gain at 1k nodes),
    but it is process-wide, so that is the caller's choice."""
    pipeline = _resolve(passes)
    check_pass_names(print_after or (), pipeline, "print_after")
    dump = set(os.environ.get("BPIR_DUMP", "").split(",")) - {""}
    check_pass_names(dump, pipeline, "BPIR_DUMP")
    print_after = set(print_after or ()) | dump
    disabled = frozenset(disable_rules or ())
    check_rule_names(disabled, pipeline)
    check = verify_enabled() if verify_each is None else verify_each
    report = PassReport() if report is None else report
    return _run(graph, pipeline, print_after, check, report, disabled)


def check_pass_names(names, pipeline=None, what: str = "print_after") -> None:
    """Refuse a pass name that would never match (a typo would otherwise print nothing)."""
    known = {name for name, _ in pipeline or default_pipeline()} | set(all_passes()) | {"after-all"}
    unknown = sorted(set(names) - known)
    if unknown:
        raise ValueError(
            f"{what}: unknown pass {', '.join(map(repr, unknown))}; passes: {', '.join(sorted(known))}"
        )


def all_rules(pipeline=None) -> dict[str, str]:
    """Every rewrite rule of the rule passes (those of ``pipeline`` and the built-in ones): its
    name and one-line description, in the order each pass tries them."""
    passes = [fn for _, fn in pipeline or ()] + list(all_passes().values())
    return {r.name: r.doc for fn in passes if isinstance(fn, RulePass) for r in fn.rules}


def check_rule_names(names, pipeline=None, what: str = "disable_rules") -> None:
    """Refuse a rule name that no rule pass has (a typo would otherwise switch nothing off)."""
    known = all_rules(pipeline)
    unknown = sorted(set(names) - set(known))
    if unknown:
        raise ValueError(f"{what}: unknown rule {', '.join(map(repr, unknown))}; rules: {', '.join(known)}")


def _run(graph: Graph, pipeline, print_after: set[str], check: bool, report: PassReport,
         disabled: frozenset[str]) -> Graph:  # fmt: skip
    for name, fn in pipeline:
        before = len(graph.nodes)
        fired: Counter = Counter()
        t0 = time.perf_counter()
        if isinstance(fn, RulePass):
            graph = fn(graph, disable=disabled & set(fn.rules.names()), fired=fired)
        else:
            graph = fn(graph)
        seconds = time.perf_counter() - t0
        rules = {r: fired[r] for r in fn.rules.names() if fired[r]} if isinstance(fn, RulePass) else {}
        report.records.append(PassRecord(name, seconds, before, len(graph.nodes), rules))
        if check:
            verify(graph)
        if name in print_after or "after-all" in print_after:
            print(f"// ----- IR after {name} -----\n{graph}", file=sys.stderr)
    return graph


def _resolve(passes) -> list[tuple[str, Pass]]:
    if passes is None:
        return default_pipeline()
    table = all_passes()
    out = []
    for p in passes:
        if isinstance(p, str):
            if p not in table:
                raise ValueError(f"unknown pass {p!r}; known: {sorted(table)}")
            out.append((p, table[p]))
        elif isinstance(p, tuple):
            out.append(p)
        else:
            out.append((p.name if isinstance(p, RulePass) else getattr(p, "__name__", "pass"), p))
    return out


def all_passes() -> dict[str, Pass]:
    return {"inline_calls": inline_calls, "simplify": simplify, "fold": fold, "cse": cse, "dce": dce,
            "fusion": fusion}  # fmt: skip
