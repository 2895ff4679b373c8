"""The ``bpir`` command: tour, ir (print a model's IR at any stage), bench, backends."""

from __future__ import annotations

import argparse
import sys


def _ir(args) -> int:
    from . import trace, vjp_graphs
    from .demo import models
    from .passes import manager, memory

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
    print_after = set(args.print_after or ())
    optimized = manager.optimize(graph, print_after=print_after)
    print(optimized)
    print(manager.last_report, file=sys.stderr)
    print(memory.report(optimized), file=sys.stderr)
    return 0


def _bench(args) -> int:
    if args.suite == "cpu":
        from bpir.bench.cpu import main
    else:
        from bpir.bench.jax_peer import main
    return main(args.rest) or 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="bpir", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("tour", help="trace, inspect, compile and check an example MLP")
    ir = sub.add_parser("ir", help="print the example MLP's IR at a stage")
    ir.add_argument("--stage", choices=["forward", "step", "backward", "optimized"], default="optimized")
    ir.add_argument("--sizes", default="8,16,4")
    ir.add_argument("--batch", type=int, default=32)
    ir.add_argument("--print-after", action="append", metavar="PASS", help="print the IR after PASS")
    ir.add_argument("--remat", action="store_true", help="backward stage: recompute cheap values (min-cut)")
    bench = sub.add_parser("bench", help="benchmarks against hand-written NumPy and jax.jit")
    bench.add_argument("suite", choices=["cpu", "jax"], nargs="?", default="cpu")
    bench.add_argument("rest", nargs=argparse.REMAINDER)
    sub.add_parser("backends", help="list the backends usable here")
    args = parser.parse_args(argv)
    if args.command == "tour":
        from bpir.demo.tour import main as tour

        return tour()
    if args.command == "ir":
        return _ir(args)
    if args.command == "bench":
        return _bench(args)
    from . import backends

    print("\n".join(backends()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
