"""bpir: compile numerical Python models ahead of time and see exactly what the compiler did."""

from __future__ import annotations

from . import random
from .errors import GradCheckError, ParseError, ShapeError, TraceError, VerifyError
from .ir import Graph, Node, Value
from .parser import parse
from .transforms import custom_vjp, grad, value_and_grad, vjp_graphs
from .types import Spec, TensorType

__version__ = "0.1.0"

# submodules reached as attributes of ``bpir`` without importing them (or the frontends) eagerly
_LAZY = {"optim": "bpir.optim", "datasets": "bpir.datasets", "train": "bpir.train", "nn": "bpir.nn"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return importlib.import_module(_LAZY[name])
    raise AttributeError(f"module 'bpir' has no attribute {name!r}")


def trace(fn, *example_args) -> Graph:
    """Trace ``fn`` on example arguments (arrays, scalars or Spec leaves of pytrees)."""
    from bpir.frontends.trace import trace as _trace

    return _trace(fn, *example_args)


def optimize(graph: Graph, passes=None, disable_rules=None) -> Graph:
    """Run the default pass pipeline (or the named passes) over ``graph``, without the rewrite
    rules named in ``disable_rules`` (e.g. ``{"double_transpose"}``)."""
    from .passes.manager import optimize as _optimize

    return _optimize(graph, passes, disable_rules=disable_rules)


def compile(fn, backend: str = "numpy", example_args=None, **options):  # noqa: A001
    """Compile ``fn`` for ``backend``; with ``example_args`` it is traced and built now (AOT)."""
    from .backend_registry import compiles_on_first_call
    from .compiled import Compiled
    from .gc_pause import full_collections_paused
    from .progress import slow_notice

    f = Compiled(fn, backend, options)
    if example_args is not None:
        name = getattr(fn, "__name__", "function")
        with slow_notice(f"compiling {name} for the {backend} backend"), full_collections_paused():
            ex = f.specialize(tuple(example_args))
            f.aot = True
            if compiles_on_first_call(backend):
                ex.warm_up()  # ahead of time means before the first call: every kernel built now
    return f


def load(path: str, machine_code: bool = False):
    """Load an artifact written by ``f.save(path)``; never runs pickle. ``machine_code=True``
    runs the compiled kernels a numba artifact carries instead of compiling its graph: only for
    artifacts you trust, since object code is code the file chose (its hashes catch damage, not
    forgery)."""
    from .artifact import load as _load
    from .gc_pause import full_collections_paused

    with full_collections_paused():
        return _load(path, machine_code)


def backends() -> list[str]:
    """Backend names usable on this machine."""
    from .backend_registry import available

    return available()


def profile(fn, *args, backend: str = "numpy", repeat: int = 20):
    """Time each node of ``fn`` compiled for ``backend`` (see ``bpir.profiler``)."""
    from .profiler import profile as _profile

    return _profile(fn, *args, backend=backend, repeat=repeat)


def check_grad(fn, *args, backend: str = "numpy", argnums=0, **options):
    """Compare compiled gradients with central finite differences in float64."""
    from .gradcheck import check_grad as _check

    return _check(fn, *args, backend=backend, argnums=argnums, **options)


__all__ = [
    "Graph", "Node", "Value", "Spec", "TensorType", "GradCheckError", "ParseError", "ShapeError",
    "TraceError", "VerifyError", "backends", "check_grad", "compile", "custom_vjp", "grad", "load",
    "optimize", "parse", "profile", "random", "trace", "value_and_grad", "vjp_graphs",
]  # fmt: skip
