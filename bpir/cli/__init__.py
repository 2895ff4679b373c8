"""The ``bpir`` command: inspect, draw, report on, benchmark, check, compile and run a model.

``FILE.py:FN`` names a function of the user's own module; it is traced on the arguments that the
module's ``example_args()`` returns (or ``--example NAME``). A problem with the user's input is
one line on stderr and exit status 2 (``--traceback`` shows the Python traceback)."""

from __future__ import annotations

import argparse
import sys
import traceback

from .model import UserError

COMMANDS = ("legacy", "show", "graph", "report", "bench", "check", "artifact")


def build_parser() -> argparse.ArgumentParser:
    """One subparser per command; each command module adds its own and sets ``run``."""
    import importlib

    parser = argparse.ArgumentParser(prog="bpir", description=__doc__)
    parser.add_argument("--traceback", action="store_true", help="show Python tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--traceback", action="store_true", default=argparse.SUPPRESS,
                        help="show Python tracebacks on errors")  # fmt: skip
    for name in COMMANDS:
        importlib.import_module(f"{__name__}.{name}").add(sub, common)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    from .legacy import is_suite_bench, run_suite_bench

    if is_suite_bench(argv):  # `bpir bench cpu|jax ...`: the built-in suites keep their own flags
        return run_suite_bench(argv)
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except UserError as e:
        if args.traceback:
            traceback.print_exc()
        print(f"bpir {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
