"""``bpir report FILE.py:FN -o report.html [--bench] [--profile]``: one self-contained HTML page."""

from __future__ import annotations

import sys

from . import model as m


def _run(args) -> int:
    import bpir
    from bpir.report import build

    mdl = m.load(args.model, args.example)
    m.trace(mdl)  # a model that does not trace fails here, with its file:line
    default = [b for b in ("numpy", "numba", "jax") if b in bpir.backends()]
    backends = m.parse_backends(args.backends, default)
    if "numpy" in backends:  # the reference first: its graph, code and profile lead
        backends.remove("numpy")
        backends.insert(0, "numpy")
    html = build(mdl, backends, bench=args.bench, profile=args.profile, cold=not args.no_cold,
                 repeat=args.repeat, remat=args.remat)  # fmt: skip
    with open(args.output, "w", encoding="utf-8") as fh:
        fh.write(html)
    print(f"wrote {args.output} ({len(html) / 1024:.0f} KiB)", file=sys.stderr)
    return 0


def add(sub, common) -> None:
    p = sub.add_parser(
        "report", parents=[common], help="one HTML page: graphs, passes, memory, source, bench"
    )
    m.add_model_arguments(p)
    p.add_argument("-o", "--output", required=True, metavar="report.html")
    p.add_argument("--backends", help="comma-separated (default: numpy, numba, jax where usable)")
    p.add_argument("--bench", action="store_true", help="add the benchmark table and chart")
    p.add_argument("--no-cold", action="store_true", help="--bench: skip the fresh-process compile timings")
    p.add_argument("--repeat", type=int, default=20, help="--bench: timed calls per backend")
    p.add_argument(
        "--profile", action="store_true", help="time each node (first backend) and colour nodes by time"
    )
    p.add_argument(
        "--remat", action="store_true", help="backward: recompute cheap values instead of saving them"
    )
    p.set_defaults(run=_run)
