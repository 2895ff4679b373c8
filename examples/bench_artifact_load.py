"""Start-up of a saved numba artifact on a new machine: one process compiles the GRU + Adam step
or the CNN step (``bpir.bench.cpu_nets``) and saves it; then fresh processes, each with its own empty bpir cache,
load it and make the first call, once compiling the graph (the default) and once running the
machine code the artifact carries (``bpir.load(path, machine_code=True)``). Prints wall and CPU
seconds of load + first call (imports apart) and the kernels compiled / loaded; the outputs are
checked equal to the saving process's.

    python -m examples.bench_artifact_load [--model gru|cnn] [--repeat 3]"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

_LOAD = """
import json, sys, time
import numpy as np
import bpir
from bpir.bench import cpu_nets
from bpir.backends.numba import kernel_cache
example = cpu_nets._examples(sys.argv[3])
c0, t0 = time.process_time(), time.perf_counter()
f = bpir.load(sys.argv[1], machine_code=sys.argv[2] == "1")
out = f(*example)
wall, cpu = time.perf_counter() - t0, time.process_time() - c0
assert np.array_equal(out[0], np.load(sys.argv[1] + ".loss.npy")), "loaded output differs"
print(json.dumps({"wall": wall, "cpu": cpu, "stats": dict(kernel_cache.STATS)}))
"""


def save(folder: str, model: str) -> None:
    """Compile the model's step on numba, save it to ``folder`` and its loss beside it."""
    import bpir
    from bpir.bench import cpu_nets

    example = cpu_nets._examples(model)
    f = bpir.compile(cpu_nets._steps(model)[0], backend="numba", example_args=example)
    f.save(folder)
    np.save(folder + ".loss.npy", f(*example)[0])


def load_in_fresh_process(folder: str, machine_code: bool, model: str) -> dict:
    """Load + first call in a new interpreter with an empty bpir cache."""
    import json

    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, BPIR_CACHE_DIR=cache)
        run = subprocess.run([sys.executable, "-c", _LOAD, folder, "1" if machine_code else "0", model],
                             env=env, capture_output=True, text=True, check=True)  # fmt: skip
    return json.loads(run.stdout.strip().splitlines()[-1])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", choices=("gru", "cnn"), default="gru")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        folder = os.path.join(tmp, f"{args.model}_step")
        t0 = time.perf_counter()
        save(folder, args.model)
        print(f"compile + save in this process: {time.perf_counter() - t0:.2f} s")
        for machine_code in (False, True) * args.repeat:
            r = load_in_fresh_process(folder, machine_code, args.model)
            how = "machine code" if machine_code else "compile graph"
            print(f"fresh process, empty cache, {how:13}: load + first call {r['wall']:.2f} s wall, "
                  f"{r['cpu']:.2f} s CPU; kernels {r['stats']}")  # fmt: skip
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
