"""``bpir check FILE.py:FN [--backends ...]``: ``bpir.check_grad`` (compiled gradients against
float64 central differences) on each backend, one table; exit status 1 on any mismatch."""

from __future__ import annotations

from . import model as m
from .tables import print_table


def _run(args) -> int:
    import bpir

    mdl = m.load(args.model, args.example)
    m.trace(mdl)  # a model that does not trace fails here, with its file:line
    backends = m.parse_backends(args.backends, [b for b in bpir.backends() if b != "numba-cuda"])
    rows, failed = [], 0
    for b in backends:
        try:
            report = bpir.check_grad(mdl.fn, *mdl.args, backend=b, argnums=args.argnums)
        except bpir.GradCheckError as e:
            failed += 1
            rows.append([b, "-", "-", "-", "-", f"FAIL: {e}"])
            continue
        except Exception as e:
            raise m.UserError(
                f"check_grad of {mdl.name} on {b} failed: {m.describe_error(e, mdl.path)}"
            ) from e
        for r in report.rows:
            rows.append([b, r.path, r.mode, f"{r.max_abs_err:.2e}", f"{r.max_rel_err:.2e}",
                         f"ok (rtol {r.rtol:g}, atol {r.atol:g})"])  # fmt: skip
    print_table(f"gradient check of {mdl.spec} (argnums={args.argnums}, central differences in float64)",
                ["backend", "input", "mode", "max abs err", "max rel err", "result"], rows)  # fmt: skip
    return 1 if failed else 0


def add(sub, common) -> None:
    p = sub.add_parser("check", parents=[common], help="check your model's gradients on each backend")
    m.add_model_arguments(p)
    p.add_argument("--backends", help="comma-separated (default: every usable backend but numba-cuda)")
    p.add_argument("--argnums", type=int, default=0, help="the argument differentiated (default 0)")
    p.set_defaults(run=_run)
