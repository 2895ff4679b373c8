"""Kernels compiled in parallel before a generated module's first call: Numba compiles one
function at a time per process (a global lock), and each kernel costs 0.2-1.5 s of typing,
lowering and LLVM, so a model with dozens of kernels waits on one core. The first call finds
every kernel's argument types by running the driver once with stand-in kernels (they record
their arguments and write zeros), then splits the kernels Numba still has to compile between
this process and worker processes (``python -m bpir.backends.numba.compile_pool``).

A worker gets the kernels' module texts and argument types as JSON on stdin, compiles them in
memory and answers with their machine code in the kernel cache's format (a JSON index line,
then the object files): no pickle either way. The parent loads that code through the same
checked loader as cached and artifact kernels; any failure (a worker that crashes, a driver
the stand-ins cannot run) only means the first call compiles the rest itself, as it would
without workers. ``BPIR_COMPILE_WORKERS`` sets the number of workers (0: none); by default
one per further CPU this process may run on, at most four."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from types import ModuleType

import numpy as np

from . import kernel_cache

WORKER_START_S = 1.0  # a worker's Python, NumPy and Numba imports, charged to its share
MIN_PARALLEL_S = 2.5  # estimated compile seconds below which workers cannot pay for themselves
WORKER_TIMEOUT_S = 60.0  # plus ten times its estimate: a worker still busy then is killed


class Recorder:
    """Stands in for a module's kernels: each call records (kernel, argument types) and zeros
    the kernel's outputs, so the driver runs on without compiling anything."""

    def __init__(self, kernels: kernel_cache.Kernels, modules: dict[str, ModuleType]):
        self.kernels, self.modules = kernels, modules
        self.calls: dict[tuple, ModuleType] = {}

    def __getattr__(self, name: str):
        dispatcher = getattr(self.kernels, name)
        code = dispatcher.py_func.__code__
        n_in = sum(not arg.startswith("out") for arg in code.co_varnames[: code.co_argcount])

        def stand_in(*args):
            key = (dispatcher, tuple(dispatcher.typeof_pyval(a) for a in args))
            self.calls.setdefault(key, self.modules[dispatcher.py_func.__module__])
            for out in args[n_in:]:
                out[...] = 0

        return stand_in


def compile_ahead(run_with, kernels: kernel_cache.Kernels, modules: list[ModuleType], args: tuple) -> None:
    """Compile, in parallel where it pays, every kernel the driver calls on ``args``' types;
    ``run_with(kernels, *args)`` runs the driver with the given kernel namespace, ``modules``
    are the kernels' modules."""
    pending = [m for m in modules if not getattr(m, kernel_cache.KERNEL).overloads]
    if _workers() < 1 or sum(_estimate(m) for m in pending) < MIN_PARALLEL_S:
        return  # no worker, or too little to compile for one to pay: no run with stand-ins
    recorder = Recorder(kernels, {m.__name__: m for m in modules})
    try:
        with np.errstate(all="ignore"):
            run_with(recorder, *args)
    except Exception:  # the stand-ins' zeros upset the driver: the first call compiles as before
        return
    todo = [(d, sig, m) for (d, sig), m in recorder.calls.items() if sig not in d.overloads]
    cost = [_estimate(m) for _, _, m in todo]
    workers = min(_workers(), len(todo) - 1)
    if workers < 1 or sum(cost) < MIN_PARALLEL_S:
        return
    shares = _partition(cost, workers)
    started = [
        (Worker([todo[k] for k in share]), sum(cost[k] for k in share)) for share in shares[1:] if share
    ]
    try:
        for k in shares[0]:
            dispatcher, sig, _ = todo[k]
            dispatcher.compile(sig)
    except BaseException:
        for worker, _ in started:
            worker.kill()
        raise
    for worker, share_cost in started:
        worker.finish(timeout=WORKER_TIMEOUT_S + 10 * share_cost)


def _workers() -> int:
    setting = os.environ.get("BPIR_COMPILE_WORKERS", "").strip()
    if setting.isdigit():
        return int(setting)
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return min(cpus - 1, 4)


def _estimate(module: ModuleType) -> float:
    """Rough compile seconds of a kernel: a fixed cost plus its length."""
    return 0.2 + 0.012 * kernel_cache.source(module).count("\n")


def _partition(cost: list[float], workers: int) -> list[list[int]]:
    """Kernel indices per process (this one first), longest first onto the least loaded; a
    worker's load starts at its start-up time."""
    loads = [0.0] + [WORKER_START_S] * workers
    shares: list[list[int]] = [[] for _ in loads]
    for k in sorted(range(len(cost)), key=lambda k: -cost[k]):
        p = loads.index(min(loads))
        loads[p] += cost[k]
        shares[p].append(k)
    return shares


class Worker:
    """One worker process compiling a share of the kernels; its answer is read by a thread
    (a full pipe never stalls it while this process compiles its own share)."""

    command = [sys.executable, "-m", __name__]

    def __init__(self, share: list[tuple]):
        from .aot import _type_data

        self.modules = [m for _, _, m in share]
        self.answer: list[bytes] = []
        self.proc = None
        kernels = [
            {"text": kernel_cache.source(m), "args": [_type_data(t) for t in sig]} for _, sig, m in share
        ]
        if any(None in k["args"] for k in kernels):
            return
        request = {"header": kernel_cache.source(self.modules[0].helpers), "kernels": kernels}
        try:
            self.proc = subprocess.Popen(self.command, stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)  # fmt: skip
            self.reader = threading.Thread(
                target=lambda: self.answer.append(self.proc.stdout.read()), daemon=True
            )
            self.reader.start()
            self.proc.stdin.write(json.dumps(request).encode())
            self.proc.stdin.close()
        except OSError:  # no process, or it died at once: this process compiles the share
            self.proc = None

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()

    def finish(self, timeout: float) -> None:
        """Give the kernels the machine code the worker answered with, if it did in time."""
        from bpir.manifest import ArtifactError

        from . import aot

        if self.proc is None:
            return
        self.reader.join(timeout)
        if self.reader.is_alive():
            self.proc.kill()
        if self.proc.wait() != 0 or not self.answer or b"\n" not in self.answer[0]:
            return
        raw, blob = self.answer[0].split(b"\n", 1)
        try:
            index = aot.read_index(raw, "compile worker answer")
            if aot.fits(index):
                aot.add_overloads(
                    index, list({m.__name__: m for m in self.modules}.values()), blob, "compile worker"
                )
                kernel_cache.compiled_elsewhere(self.modules)
        except ArtifactError:
            return


def _serve() -> None:
    """The worker: compile the requested kernels in memory, answer with their machine code."""
    from .aot import _type_from, machine_code

    request = json.loads(sys.stdin.buffer.read())
    kernel_cache.memory_header(request["header"])
    modules = []
    for kernel in request["kernels"]:
        module = kernel_cache.memory_kernel(kernel["text"])
        getattr(module, kernel_cache.KERNEL).compile(tuple(_type_from(t, "request") for t in kernel["args"]))
        modules.append(module)
    index, blob, _ = machine_code(list({m.__name__: m for m in modules}.values()))
    sys.stdout.buffer.write(index.encode() + b"\n" + blob)


if __name__ == "__main__":
    _serve()
