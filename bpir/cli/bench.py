"""``bpir bench FILE.py:FN [--backends ...] [--repeat N] [--json OUT] [--plot OUT.png] [--profile]``:
your model on each backend; ``bpir bench cpu|jax`` runs the built-in MLP suites instead."""

from __future__ import annotations

import json
import sys

from . import model as m
from .tables import print_table


def format_bytes(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def _ms(s: float | None) -> str:
    return "-" if s is None else f"{s * 1e3:.3f}"


def _s(s: float | None) -> str:
    return "-" if s is None else f"{s:.2f}"


def print_result(result: dict) -> None:
    rows = []
    for r in result["backends"]:
        if r["status"] != "ok":
            continue
        rows.append([r["backend"], _s(r["cold_compile_s"]), _s(r["cache_load_s"]), _ms(r["median_s"]),
                     f"{_ms(r['p25_s'])}-{_ms(r['p75_s'])}", f"{r['ratio_to_fastest']:.2f}x",
                     format_bytes(r["plan_peak_bytes"]), f"{r['max_rel_diff']:.1e}"])  # fmt: skip
    mach = result["machine"]
    print_table(f"{result['model']} on {mach['cpu']} ({mach['usable_cores']} cores usable)",
                ["backend", "cold compile s", "disk cache s", "warm median ms", "IQR ms", "vs fastest",
                 "plan peak", "diff vs numpy"], rows)  # fmt: skip
    print("cold compile: trace + optimize + codegen + compile + first call in a fresh process with an empty "
          "cache; disk cache: the same in a second process; warm: round-robin over backends, results waited "
          "for (jax: block_until_ready, arguments on the device); diff: max |out - numpy| / max |numpy|")  # fmt: skip
    for r in result["backends"]:
        if r["status"] == "refused":
            print(f"refused to time {r['backend']}: its output {r['worst_output']} differs from the numpy "
                  f"backend's by {r['max_rel_diff']:.2e} of the largest value", file=sys.stderr)  # fmt: skip


def _run(args) -> int:
    import bpir
    from bpir.bench.user import bench, plot

    mdl = m.load(args.model, args.example)
    m.trace(mdl)  # a model that does not trace fails here, with its file:line
    backends = m.parse_backends(args.backends, [b for b in bpir.backends() if b != "numba-cuda"])
    result = m.user_call(mdl, "benchmarking", bench, mdl, backends, args.repeat, cold=not args.no_cold)
    print_result(result)
    if args.profile:
        from bpir.profiler import profile

        for b in [r["backend"] for r in result["backends"] if r["status"] == "ok"]:
            report = m.user_call(mdl, f"profiling ({b})", profile, mdl.fn, *mdl.args, backend=b)
            print(report.text(args.top))
            result.setdefault("profiles", {})[b] = report.to_json()
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=1)
    if args.plot:
        plot(result, args.plot)
    return 1 if any(r["status"] != "ok" for r in result["backends"]) else 0


def add(sub, common) -> None:
    p = sub.add_parser("bench", parents=[common], help="benchmark your model on each backend "
                       "(or `bpir bench cpu|jax`: the built-in suites)")  # fmt: skip
    m.add_model_arguments(p)
    p.add_argument("--backends", help="comma-separated (default: every usable backend but numba-cuda)")
    p.add_argument("--repeat", type=int, default=30, help="timed calls per backend (default 30)")
    p.add_argument("--json", metavar="OUT.json")
    p.add_argument("--plot", metavar="OUT.png", help="a bar chart (matplotlib)")
    p.add_argument("--no-cold", action="store_true", help="skip the fresh-process compile timings")
    p.add_argument("--profile", action="store_true", help="time each node on each backend")
    p.add_argument("--top", type=int, default=10, help="--profile: rows shown per backend")
    p.set_defaults(run=_run)
