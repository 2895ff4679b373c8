"""``bpir show FILE.py:FN --stage traced|backward|optimized|source``: the IR at a stage (on stdout,
parseable by ``bpir.parse``), with the pass and memory reports (stderr), or the generated source."""

from __future__ import annotations

import sys

from . import model as m


def stage_graph(mdl: m.Model, stage: str, remat: bool = False, print_after=()):
    """The graph of ``stage`` (traced, backward or optimized) and, for optimized, the pass report."""
    from bpir.passes import manager

    if stage == "backward":
        return m.backward(mdl, remat=remat)[1], None
    graph = m.trace(mdl).graph
    if stage == "traced":
        return graph, None
    optimized = m.user_call(mdl, "optimizing", manager.optimize, graph, print_after=set(print_after))
    return optimized, manager.last_report


def _run(args) -> int:
    from bpir.passes import manager, memory

    try:
        manager.check_pass_names(args.print_after or (), what="--print-after")
    except ValueError as e:
        raise m.UserError(str(e)) from None
    mdl = m.load(args.model, args.example)
    if args.stage == "source":
        print(m.compile_model(mdl, args.backend).source)
        return 0
    graph, report = stage_graph(mdl, args.stage, args.remat, args.print_after or ())
    print(graph)
    if report is not None:
        print(report, file=sys.stderr)
    mem = memory.report(graph)
    print("memory: " + ", ".join(f"{k} {v:,}" for k, v in mem.items()), file=sys.stderr)
    return 0


def add(sub, common) -> None:
    p = sub.add_parser(
        "show", parents=[common], help="print your model's IR at a stage, or its generated source"
    )
    m.add_model_arguments(p)
    p.add_argument("--stage", choices=m.STAGES, default="optimized")
    p.add_argument("--backend", default="numpy", help="for --stage source (default numpy)")
    p.add_argument(
        "--remat", action="store_true", help="backward: recompute cheap values instead of saving them"
    )
    p.add_argument(
        "--print-after", action="append", metavar="PASS", help="optimized: print the IR after PASS"
    )
    p.set_defaults(run=_run)
