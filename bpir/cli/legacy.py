"""The built-in demo commands: ``tour``, ``ir`` (the demo MLP's IR at a stage), ``backends`` and
the ``bench cpu|jax`` suites."""

from __future__ import annotations

import sys

from .model import UserError

SUITES = ("cpu", "jax")


def _ir(args) -> int:
    from bpir import trace, vjp_graphs
    from bpir.demo import models
    from bpir.passes import manager, memory

    try:
        manager.check_pass_names(args.print_after or (), what="--print-after")
    except ValueError as e:
        raise UserError(str(e)) from None
    sizes = [int(s) for s in args.sizes.split(",")]
    params = models.init_mlp(sizes)
    x, labels = models.mlp_batch(sizes, args.batch)
    if args.stage == "backward":
        _, bwd = vjp_graphs(models.mlp_loss, params, x, labels, remat=args.remat)
        print(bwd)
        return 0
    graph = trace(models.sgd_step if args.stage != "forward" else models.mlp_loss, params, x, labels)
    if args.stage in ("forward", "step"):
        print(graph)
        return 0
    passes = manager.PassReport()
    optimized = manager.optimize(graph, print_after=set(args.print_after or ()), report=passes)
    print(optimized)
    print(passes, file=sys.stderr)
    print(memory.report(optimized), file=sys.stderr)
    return 0


def _tour(args) -> int:
    from bpir.demo.tour import main as tour

    return tour()


def _backends(args) -> int:
    from bpir import backends

    print("\n".join(backends()))
    return 0


def is_suite_bench(argv: list[str]) -> bool:
    return len(argv) >= 1 and argv[0] == "bench" and (len(argv) == 1 or argv[1] in SUITES)


def run_suite_bench(argv: list[str]) -> int:
    """``bpir bench [cpu|jax] ...``: the built-in MLP benchmarks with their own options."""
    suite, rest = (argv[1], argv[2:]) if len(argv) > 1 else ("cpu", [])
    if suite == "cpu":
        from bpir.bench.cpu import main
    else:
        from bpir.bench.jax_peer import main
    return main(rest) or 0


def add(sub, common) -> None:
    sub.add_parser(
        "tour", parents=[common], help="trace, inspect, compile and check an example MLP"
    ).set_defaults(run=_tour)
    ir = sub.add_parser("ir", parents=[common], help="print the example MLP's IR at a stage")
    ir.add_argument("--stage", choices=["forward", "step", "backward", "optimized"], default="optimized")
    ir.add_argument("--sizes", default="8,16,4")
    ir.add_argument("--batch", type=int, default=32)
    ir.add_argument("--print-after", action="append", metavar="PASS", help="print the IR after PASS")
    ir.add_argument("--remat", action="store_true", help="backward stage: recompute cheap values (min-cut)")
    ir.set_defaults(run=_ir)
    sub.add_parser("backends", parents=[common], help="list the backends usable here").set_defaults(
        run=_backends
    )
