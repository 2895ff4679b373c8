"""``bpir graph FILE.py:FN --stage ... -o OUT.{dot,svg,png}``: a picture of the graph at a stage,
rendered with Graphviz's ``dot``; without ``dot`` the .dot file is written with the command that
renders it."""

from __future__ import annotations

import os
import subprocess
import sys

from . import model as m

FORMATS = ("dot", "svg", "png")


def _run(args) -> int:
    from bpir.dot import drawing, render

    from .show import stage_graph

    if args.stage == "source":
        raise m.UserError("--stage source is text: use `bpir show --stage source`")
    fmt = os.path.splitext(args.output)[1].lstrip(".").lower()
    if fmt not in FORMATS:
        raise m.UserError(f"{args.output}: the extension must be one of .{', .'.join(FORMATS)}")
    mdl = m.load(args.model, args.example)
    graph, _ = stage_graph(mdl, args.stage, args.remat)
    d = drawing(graph, collapse=args.collapse, max_nodes=args.max_nodes)
    if fmt == "dot":
        with open(args.output, "w") as fh:
            fh.write(d.text)
    else:
        try:
            data = render(d.text, fmt)
        except subprocess.TimeoutExpired:
            raise m.UserError(f"Graphviz's dot took too long on {len(d.nodes)} boxes: lower --max-nodes, "
                              "add --collapse, or write a .dot") from None  # fmt: skip
        except FileNotFoundError:
            dot_path = os.path.splitext(args.output)[0] + ".dot"
            with open(dot_path, "w") as fh:
                fh.write(d.text)
            print(f"Graphviz's `dot` is not on PATH: wrote {dot_path}; render it with "
                  f"`dot -T{fmt} {dot_path} -o {args.output}` (Debian: apt-get install graphviz)", file=sys.stderr)  # fmt: skip
            return 0
        with open(args.output, "wb") as fh:
            fh.write(data)
    ops = sum(1 for n in d.nodes.values() if n.kind in ("op", "region"))
    print(f"wrote {args.output}: {len(graph.nodes)} nodes, {ops} op boxes drawn", file=sys.stderr)
    return 0


def add(sub, common) -> None:
    p = sub.add_parser("graph", parents=[common], help="draw your model's graph (Graphviz)")
    m.add_model_arguments(p)
    p.add_argument("--stage", choices=[s for s in m.STAGES if s != "source"], default="optimized")
    p.add_argument("-o", "--output", required=True, metavar="OUT.{dot,svg,png}")
    p.add_argument(
        "--remat", action="store_true", help="backward: recompute cheap values instead of saving them"
    )
    p.add_argument("--collapse", action="store_true", help="draw each fused region as one node")
    p.add_argument("--max-nodes", type=int, default=400,
                   help="past this many boxes collapse fused regions; past this many nodes draw the first "
                        "ones and a summary (default 400)")  # fmt: skip
    p.set_defaults(run=_run)
