"""One backend's compile time for a user's model, measured in this (fresh) process: load the
model, then ``bpir.compile`` ahead of time plus the first call. Run twice with the same
``BPIR_CACHE_DIR`` (empty, then filled) for the cold and the disk-cache times.

    python -m bpir.bench.cold FILE.py FN EXAMPLE BACKEND   -> prints JSON {"import_s", "compile_s"}"""

from __future__ import annotations

import json
import sys
import time


def main(argv: list[str]) -> int:
    t0 = time.perf_counter()
    file, fn, example, backend = argv
    import bpir
    from bpir.backend_registry import backend_module
    from bpir.bench.timing import block
    from bpir.cli.model import load

    backend_module(backend)  # the backend's own imports are not compile time
    model = load(f"{file}:{fn}", example)
    t1 = time.perf_counter()
    f = bpir.compile(model.fn, backend=backend, example_args=model.args)
    block(f(*model.args))
    print(json.dumps({"import_s": t1 - t0, "compile_s": time.perf_counter() - t1}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
