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
memory in order and answers each one's machine code as soon as it is built, in the kernel
cache's format (a line with two sizes, a JSON index, the object files): no pickle either way.
Once its own share is done, this process compiles a worker's share from the end while the
worker goes on from the start, loading the answers as they come, and stops the worker when
every kernel has machine code (``Worker.help_finish``): no one idles on a share estimated too
large. The parent loads that code through the same checked loader as cached and artifact
kernels; any failure (a worker that crashes or never answers, a driver the stand-ins cannot
run) only means the first call compiles the rest itself, as it would without workers.
``BPIR_COMPILE_WORKERS`` sets the number of workers (0: none); by default one per further CPU
this process may run on, at most four."""

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
MAX_ANSWER_BYTES = 1 << 28  # one kernel's index and object code: a larger answer is not read
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
    started = [Worker([todo[k] for k in share]) for share in shares[1:] if share]
    try:
        for k in shares[0]:
            dispatcher, sig, _ = todo[k]
            dispatcher.compile(sig)
        for worker in started:
            worker.help_finish()
    finally:
        for worker in started:
            worker.kill()


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
    """One worker process compiling a share of the kernels, answering each kernel's machine
    code as soon as it is built; a thread reads the answers (a full pipe never stalls it while
    this process compiles its own share)."""

    command = [sys.executable, "-m", __name__]

    def __init__(self, share: list[tuple]):
        from .aot import _type_data

        # in the order the worker compiles them (generated kernels, then library ones), which
        # ``help_finish`` takes from the other end
        self.share = sorted(share, key=lambda item: library_kernels.is_library(item[2]))
        self.modules = list({m.__name__: m for _, _, m in self.share}.values())
        self.answers: list[tuple[bytes, bytes]] = []  # (index, object files) per kernel, in order
        self.loaded = 0
        self.proc = None
        generated = [m for m in self.modules if not library_kernels.is_library(m)]
        kernels = [{"text": kernel_cache.source(m), "args": [_type_data(t) for t in sig]}
                   for _, sig, m in self.share if not library_kernels.is_library(m)]  # fmt: skip
        library = [{"module": m.__name__, "function": d.py_func.__name__, "args": [_type_data(t) for t in sig]}
                   for d, sig, m in self.share if library_kernels.is_library(m)]  # fmt: skip
        if any(None in k["args"] for k in kernels + library):
            return
        header = kernel_cache.source(generated[0].helpers) if generated else None
        request = {"header": header, "kernels": kernels, "library": library}
        try:
            self.proc = subprocess.Popen(self.command, stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)  # fmt: skip
            self.reader = threading.Thread(target=self._read, daemon=True)
            self.reader.start()
            self.proc.stdin.write(json.dumps(request).encode())
            self.proc.stdin.close()
        except OSError:  # no process, or it died at once: this process compiles the share
            self.proc = None

    def _read(self) -> None:
        """Collect answers: each a line ``<index bytes> <object bytes>``, then those bytes."""
        out = self.proc.stdout
        while True:
            sizes = out.readline().split()
            if len(sizes) != 2 or not all(n.isdigit() for n in sizes):
                return
            n_index, n_blob = map(int, sizes)
            if n_index + n_blob > MAX_ANSWER_BYTES:
                return
            body = out.read(n_index + n_blob)
            if len(body) != n_index + n_blob:
                return
            self.answers.append((body[:n_index], body[n_index:]))

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def finish(self, timeout: float) -> None:
        """Wait for the whole share's answers (at most ``timeout`` seconds), then load them."""
        if self.proc is None:
            return
        self.reader.join(timeout)
        self.kill()
        self._load_answers()

    def help_finish(self) -> None:
        """Compile the share from its end while the worker works from its start, loading the
        worker's answers as they come, until every kernel has machine code; then stop the
        worker. The two meet in the middle, so neither process waits on the other for more
        than one kernel, whatever the worker's start-up and compile times turn out to be (a
        fixed split left this process idle 1.5-2.8 s of a 4-9 s compile here)."""
        while True:
            self._load_answers()
            pending = [(d, sig) for d, sig, _ in self.share if sig not in d.overloads]
            if not pending:
                return
            dispatcher, sig = pending[-1]
            dispatcher.compile(sig)

    def _load_answers(self) -> None:
        """Give the kernels the machine code of the answers not loaded yet (checked first)."""
        from bpir.manifest import ArtifactError

        from . import aot

        if self.proc is None:
            return
        while self.loaded < len(self.answers):
            raw, blob = self.answers[self.loaded]
            self.loaded += 1
            missing = [(d, sig, m) for d, sig, m in self.share if sig not in d.overloads]
            try:
                index = aot.read_index(raw, "compile worker answer")
                if not aot.fits(index):
                    continue
                aot.add_overloads(index, self.modules, blob, "compile worker")
            except ArtifactError:
                continue
            built = [m for d, sig, m in missing if sig in d.overloads]
            kernel_cache.compiled_elsewhere([m for m in built if not library_kernels.is_library(m)])
            kernel_cache.STATS["library_by_workers"] += sum(map(library_kernels.is_library, built))


def _serve() -> None:
    """The worker: compile the requested kernels in memory, answer with their machine code."""
    from .aot import _type_from, machine_code

    request = json.loads(sys.stdin.buffer.read())
    if request["header"] is not None:
        kernel_cache.memory_header(request["header"])
    for kernel in request["kernels"]:
        module = kernel_cache.memory_kernel(kernel["text"])
        getattr(module, kernel_cache.KERNEL).compile(tuple(_type_from(t, "request") for t in kernel["args"]))
        _answer(*machine_code([module])[:2])
    for kernel in request["library"]:
        if kernel["module"] not in library_kernels.NAMES:
            raise ValueError(f"{kernel['module']!r} is not a library kernel module")
        module = importlib.import_module(kernel["module"])
        signature = tuple(_type_from(t, "request") for t in kernel["args"])
        library_kernels.dispatchers(module)[kernel["function"]].compile(signature)
        _answer(*machine_code([module], {(module.__name__, kernel["function"], signature)})[:2])


def _answer(index: str, blob: bytes) -> None:
    """One kernel's machine code, at once: the parent may be waiting for it."""
    raw = index.encode()
    sys.stdout.buffer.write(b"%d %d\n" % (len(raw), len(blob)) + raw + blob)
    sys.stdout.buffer.flush()


if __name__ == "__main__":
    from bpir.gc_pause import full_collections_paused

    with full_collections_paused():
        _serve()
