"""``bpir show FILE.py:FN --stage traced|backward|optimized|source|sharded``: the IR at a stage (on
stdout, parseable by ``bpir.parse``), with the pass and memory reports (stderr), the generated
source, or (sharded: jax backend, ``--mesh``/``--shard``) each value's sharding and the collectives
XLA inserted."""

from __future__ import annotations

import os
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
    passes = manager.PassReport()
    optimized = m.user_call(
        mdl, "optimizing", manager.optimize, graph, print_after=set(print_after), report=passes
    )
    return optimized, passes


def _run(args) -> int:
    from bpir.passes import manager, memory

    try:
        manager.check_pass_names(args.print_after or (), what="--print-after")
    except ValueError as e:
        raise m.UserError(str(e)) from None
    if args.stage == "sharded" and args.devices:
        if "jax" in sys.modules:
            raise m.UserError("--devices must be set before jax is imported")
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                                   f" --xla_force_host_platform_device_count={args.devices}").strip()  # fmt: skip
    mdl = m.load(args.model, args.example)
    if args.stage == "sharded":
        return _sharded(mdl, args)
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


def parse_mesh(text: str) -> dict[str, int]:
    """``data=4,model=2`` -> {"data": 4, "model": 2}."""
    mesh = {}
    for part in text.split(","):
        name, _, size = part.partition("=")
        if not name.strip() or not size.strip().isdigit():
            raise m.UserError(f"--mesh {text!r}: expected NAME=SIZE[,NAME=SIZE...], e.g. data=4,model=2")
        mesh[name.strip()] = int(size)
    return mesh


def parse_shard(text: str) -> tuple[str, tuple]:
    """``p['W1']=None,model`` -> ("p['W1']", (None, "model")); ``a+b`` splits one dimension over two axes."""
    path, sep, spec = text.rpartition("=")
    if not sep or not path:
        raise m.UserError(f"--shard {text!r}: expected PATH=SPEC, e.g. \"p['W1']=None,model\"")
    entries = []
    for e in spec.split(","):
        e = e.strip()
        entries.append(None if e in ("", "None") else tuple(e.split("+")) if "+" in e else e)
    return path, tuple(entries)


def _sharded(mdl: m.Model, args) -> int:
    import bpir
    from bpir.backends.jax import sharding

    if not args.mesh:
        raise m.UserError(
            "--stage sharded needs --mesh NAME=SIZE[,...] (and --shard PATH=SPEC for each split argument)"
        )
    shardings = dict(parse_shard(s) for s in args.shard or ())
    f = m.user_call(mdl, "compiling (jax, sharded)", bpir.compile, mdl.fn, backend="jax",
                    example_args=mdl.args, mesh=parse_mesh(args.mesh), shardings=shardings)  # fmt: skip
    ex = f._current()
    from bpir.pytree import leaf_paths

    print(sharding.describe(ex.run, ex.in_paths, leaf_paths(ex.out_tree, "out")))
    return 0


def add(sub, common) -> None:
    p = sub.add_parser(
        "show", parents=[common], help="print your model's IR at a stage, or its generated source"
    )
    m.add_model_arguments(p)
    p.add_argument("--stage", choices=(*m.STAGES, "sharded"), default="optimized")
    p.add_argument("--mesh", help="sharded: mesh axes, e.g. data=4,model=2")
    p.add_argument(
        "--shard", action="append", metavar="PATH=SPEC", help="sharded: e.g. \"p['W1']=None,model\""
    )
    p.add_argument("--devices", type=int, help="sharded: number of host devices (CPU)")
    p.add_argument("--backend", default="numpy", help="for --stage source (default numpy)")
    p.add_argument(
        "--remat", action="store_true", help="backward: recompute cheap values instead of saving them"
    )
    p.add_argument(
        "--print-after", action="append", metavar="PASS", help="optimized: print the IR after PASS"
    )
    p.set_defaults(run=_run)
