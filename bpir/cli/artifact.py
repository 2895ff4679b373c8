"""``bpir compile FILE.py:FN --backend B -o DIR`` writes an ahead-of-time artifact;
``bpir run DIR --inputs IN.npz [-o OUT.npz]`` runs it on arrays keyed by argument path
(the paths ``bpir compile`` prints, e.g. ``p['W1']``)."""

from __future__ import annotations

import os
import sys

import numpy as np

from . import model as m


def _compile(args) -> int:
    mdl = m.load(args.model, args.example)
    f = m.compile_model(mdl, args.backend)
    options = {}
    if args.platforms:
        if args.backend != "jax":
            raise m.UserError(
                "--platforms is for the jax backend (jax.export); other backends run where built"
            )
        options["platforms"] = tuple(p.strip() for p in args.platforms.split(",") if p.strip())
    m.user_call(mdl, "saving", f.save, args.output, **options)
    print(f"wrote {args.output} ({args.backend})")
    print(f.signature)
    print(f"run it: bpir run {args.output} --inputs IN.npz -o OUT.npz   (npz keys: the argument paths above)")
    return 0


def inputs_from_npz(loaded, path: str) -> tuple:
    """The call's arguments, from an .npz whose keys are the artifact's argument paths."""
    from bpir.pytree import unflatten

    if not os.path.isfile(path):
        raise m.UserError(f"{path}: no such file")
    sig = loaded.signature
    with np.load(path, allow_pickle=False) as data:
        keys = set(data.files)
        want = [p for p, _ in sig.inputs]
        missing = [p for p in want if p not in keys]
        extra = sorted(keys - set(want))
        if missing or extra:
            raise m.UserError(f"{path}: " + "; ".join(
                ([f"missing {', '.join(missing)}"] if missing else []) + ([f"unexpected {', '.join(extra)}"] if extra else [])
            ) + f". Expected keys: {', '.join(want)}")  # fmt: skip
        leaves = [data[p] for p in want]
    ex = loaded._current()
    return tuple(unflatten(ex.in_tree, leaves))


def _run(args) -> int:
    import bpir
    from bpir.pytree import flatten, leaf_paths

    if not os.path.isfile(os.path.join(args.artifact, "manifest.json")):
        raise m.UserError(f"{args.artifact}: not a bpir artifact (no manifest.json)")
    try:
        loaded = bpir.load(args.artifact)
    except (ValueError, RuntimeError, OSError) as e:
        raise m.UserError(f"{args.artifact}: {e}") from e
    if not args.inputs:
        print(loaded.signature)
        return 0
    call_args = inputs_from_npz(loaded, args.inputs)
    try:
        result = loaded(*call_args)
    except (TypeError, ValueError) as e:
        raise m.UserError(f"{args.inputs}: {e}") from e
    leaves, tree = flatten(result)
    paths = leaf_paths(tree, "out")
    arrays = {p: np.asarray(x) for p, x in zip(paths, leaves)}
    for p, x in arrays.items():
        print(f"{p}: {x.dtype}{list(x.shape)}" + (f" = {x.item()!r}" if x.size == 1 else ""))
    if args.output:
        np.savez(args.output, **arrays)
        print(f"wrote {args.output}", file=sys.stderr)
    return 0


def add(sub, common) -> None:
    p = sub.add_parser(
        "compile", parents=[common], help="compile your model ahead of time into an artifact folder"
    )
    m.add_model_arguments(p)
    p.add_argument("--backend", default="numpy")
    p.add_argument("-o", "--output", required=True, metavar="DIR")
    p.add_argument("--platforms", help="jax: comma-separated export platforms, e.g. cpu,cuda,tpu")
    p.set_defaults(run=_compile)
    r = sub.add_parser(
        "run", parents=[common], help="run an artifact on arrays from an .npz (keys: argument paths)"
    )
    r.add_argument("artifact", metavar="DIR")
    r.add_argument("--inputs", metavar="IN.npz", help="without it: print the expected arguments")
    r.add_argument("-o", "--output", metavar="OUT.npz", help="write the outputs (keys out, out[0], ...)")
    r.set_defaults(run=_run)
