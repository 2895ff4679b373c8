"""Kernels compiled in parallel before a generated module's first call: Numba compiles one
function at a time per process (a global lock), and each kernel costs 0.2-1.5 s of typing,
lowering and LLVM, so a model with dozens of kernels waits on one core. The first call finds
every kernel's argument types by running the driver once with stand-in kernels (they record
their arguments and write zeros), then splits the kernels Numba still has to compile between
this process and worker processes (``python -m bpir.backends.numba.compile_pool``). On a new
machine (no library kernel compiled or cached yet) the library kernels the driver calls are
stood in for too (``library_kernels.standing_in``) and shared out with the generated ones:
the CNN step's first compile went from 14.4-15.9 s to 9.7-11.1 s on two cores.

A worker gets the kernels' module texts (a library kernel: its module, one of
``library_kernels.NAMES``, and function name) and argument types as JSON on stdin, compiles them in
memory and answers with their machine code in the kernel cache's format (a JSON index line,
then the object files): no pickle either way. The parent loads that code through the same
checked loader as cached and artifact kernels; any failure (a worker that crashes, a driver
the stand-ins cannot run) only means the first call compiles the rest itself, as it would
without workers. ``BPIR_COMPILE_WORKERS`` sets the number of workers (0: none); by default
one per further CPU this process may run on, at most four."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import threading
from types import ModuleType

import numpy as np

from . import kernel_cache, library_kernels

WORKER_START_S = 1.0  # a worker's Python, NumPy and Numba imports, charged to its share
MIN_PARALLEL_S = 2.5  # estimated compile seconds below which workers cannot pay for themselves
WORKER_TIMEOUT_S = 60.0  # plus ten times its estimate: a worker still busy then is killed
LIBRARY_KERNEL_S = 2.5  # a library kernel's compile: 0.5-4.5 s measured (conv ~4 s, pooling ~0.5-1.4 s)


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


def compile_ahead(run_with, kernels: kernel_cache.Kernels | None, modules: list[ModuleType], args: tuple,
                  libraries: list[ModuleType] = ()) -> None:  # fmt: skip
    """Compile, in parallel where it pays, every kernel the driver calls on ``args``' types;
    ``run_with(kernels, *args)`` runs the driver with the given kernel namespace, ``modules``
    are the kernels' modules, ``libraries`` the library kernel modules it calls (shared out
    too when none of them has machine code yet, as on a new machine)."""
    pending = [m for m in modules if not getattr(m, kernel_cache.KERNEL).overloads]
    estimate = sum(_estimate(m) for m in pending)
    if library_kernels.none_compiled(libraries):
        estimate += LIBRARY_KERNEL_S
    if _workers() < 1 or estimate < MIN_PARALLEL_S:
        return  # no worker, or too little to compile for one to pay: no run with stand-ins
    recorder = Recorder(kernels, {m.__name__: m for m in modules})
    try:
        with np.errstate(all="ignore"), library_kernels.standing_in() as library_calls:
            run_with(recorder, *args)
    except Exception:  # the stand-ins' zeros upset the driver: the first call compiles as before
        return
    calls = {**recorder.calls, **library_calls}
    todo = [(d, sig, m) for (d, sig), m in calls.items() if sig not in d.overloads]
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
    """Rough compile seconds of a kernel: a fixed cost plus its length (a library kernel's: the
    mean measured)."""
    if library_kernels.is_library(module):
        return LIBRARY_KERNEL_S
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
        generated = [m for m in self.modules if not library_kernels.is_library(m)]
        kernels = [{"text": kernel_cache.source(m), "args": [_type_data(t) for t in sig]}
                   for _, sig, m in share if not library_kernels.is_library(m)]  # fmt: skip
        library = [{"module": m.__name__, "function": d.py_func.__name__, "args": [_type_data(t) for t in sig]}
                   for d, sig, m in share if library_kernels.is_library(m)]  # fmt: skip
        if any(None in k["args"] for k in kernels + library):
            return
        header = kernel_cache.source(generated[0].helpers) if generated else None
        request = {"header": header, "kernels": kernels, "library": library}
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
                kernel_cache.compiled_elsewhere(
                    [m for m in self.modules if not library_kernels.is_library(m)]
                )
                kernel_cache.STATS["library_by_workers"] += sum(map(library_kernels.is_library, self.modules))
        except ArtifactError:
            return


def _serve() -> None:
    """The worker: compile the requested kernels in memory, answer with their machine code."""
    from .aot import _type_from, machine_code

    request = json.loads(sys.stdin.buffer.read())
    if request["header"] is not None:
        kernel_cache.memory_header(request["header"])
    modules, library = [], set()
    for kernel in request["kernels"]:
        module = kernel_cache.memory_kernel(kernel["text"])
        getattr(module, kernel_cache.KERNEL).compile(tuple(_type_from(t, "request") for t in kernel["args"]))
        modules.append(module)
    for kernel in request["library"]:
        if kernel["module"] not in library_kernels.NAMES:
            raise ValueError(f"{kernel['module']!r} is not a library kernel module")
        module = importlib.import_module(kernel["module"])
        signature = tuple(_type_from(t, "request") for t in kernel["args"])
        library_kernels.dispatchers(module)[kernel["function"]].compile(signature)
        library.add((module.__name__, kernel["function"], signature))
        modules.append(module)
    index, blob, _ = machine_code(list({m.__name__: m for m in modules}.values()), library)
    sys.stdout.buffer.write(index.encode() + b"\n" + blob)


if __name__ == "__main__":
    from bpir.gc_pause import full_collections_paused

    with full_collections_paused():
        _serve()
