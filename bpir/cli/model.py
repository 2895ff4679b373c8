"""``FILE.py:FN``: import the user's module, find FN and its example arguments, trace it.

Every problem the user can fix (a missing file, a misspelt function, no ``example_args()``, an
example that fails to trace) becomes a ``UserError`` naming it, with the user's file:line."""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import traceback
from dataclasses import dataclass
from types import ModuleType
from typing import Any

STAGES = ("traced", "backward", "optimized", "source")


class UserError(Exception):
    """A problem in what the user gave the command; printed as one line, exit status 2."""


@dataclass
class Model:
    """A user's function and the example arguments it is traced on."""

    spec: str
    path: str
    fn: Any
    args: tuple
    example: str = "example_args"

    @property
    def name(self) -> str:
        return self.spec.rsplit(":", 1)[1]


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="FILE.py:FN", help="a function of your module")
    parser.add_argument("--example", metavar="NAME", default="example_args",
                        help="the module's function returning FN's example arguments (default: example_args)")  # fmt: skip


def _user_line(exc: BaseException, path: str) -> str | None:
    """``file.py:LINE`` of the innermost traceback frame in the user's file."""
    where = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if os.path.abspath(frame.filename) == path:
            where = f"{os.path.basename(path)}:{frame.lineno}"
    return where


def describe_error(exc: BaseException, path: str) -> str:
    where = _user_line(exc, path)
    text = f"{type(exc).__name__}: {exc}".splitlines()[0] if str(exc) else type(exc).__name__
    return f"{text} (at {where})" if where and where not in text else text


def import_module(path: str) -> ModuleType:
    """Import a Python file as a fresh module; its folder is importable for its own imports."""
    if not os.path.isfile(path):
        raise UserError(f"{path}: no such file")
    if not path.endswith(".py"):
        raise UserError(f"{path}: expected a Python file (FILE.py:FN)")
    path = os.path.abspath(path)
    name = "bpir_user_" + os.path.splitext(os.path.basename(path))[0].replace("-", "_")
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    folder = os.path.dirname(path)
    sys.path.insert(0, folder)
    try:
        spec.loader.exec_module(module)
    except Exception as e:
        raise UserError(f"importing {os.path.basename(path)} failed: {describe_error(e, path)}") from e
    finally:
        if sys.path and sys.path[0] == folder:
            sys.path.pop(0)
    return module


def _functions(module: ModuleType) -> list[str]:
    return sorted(k for k, v in vars(module).items()
                  if callable(v) and getattr(v, "__module__", None) == module.__name__)  # fmt: skip


def load(spec: str, example: str = "example_args") -> Model:
    """Import FILE.py, find FN, call the example function; nothing is traced yet."""
    if ":" not in spec:
        raise UserError(f"{spec!r}: expected FILE.py:FN, e.g. models.py:loss")
    file, fn_name = spec.rsplit(":", 1)
    module = import_module(file)
    path = os.path.abspath(file)
    fn = getattr(module, fn_name, None)
    if not callable(fn):
        raise UserError(
            f"{file}: no function {fn_name!r} (functions there: {', '.join(_functions(module)) or 'none'})"
        )
    make = getattr(module, example, None)
    if not callable(make):
        raise UserError(f"{file}: no {example}() function; define {example}() returning the tuple of "
                        f"arguments to trace {fn_name} with")  # fmt: skip
    try:
        args = make()
    except Exception as e:
        raise UserError(f"{file}: {example}() failed: {describe_error(e, path)}") from e
    if not isinstance(args, (tuple, list)):
        raise UserError(f"{file}: {example}() must return a tuple of arguments for {fn_name}, "
                        f"got {type(args).__name__}")  # fmt: skip
    return Model(spec, path, fn, tuple(args), example)


def user_call(model: Model, what: str, call, *args, **kwargs):
    """Run a bpir step on the user's model; its failure becomes a UserError with file:line."""
    try:
        return call(*args, **kwargs)
    except UserError:
        raise
    except Exception as e:
        raise UserError(f"{what} {model.name} failed: {describe_error(e, model.path)}") from e


def trace(model: Model):
    """The traced forward graph with its argument paths (``bpir.frontends.trace.Traced``)."""
    from bpir.frontends.trace import trace_function

    return user_call(model, "tracing", trace_function, model.fn, model.args)


def backward(model: Model, remat: bool = False, argnums: int = 0):
    from bpir import vjp_graphs

    return user_call(
        model, "differentiating", vjp_graphs, model.fn, *model.args, argnums=argnums, remat=remat
    )


def compile_model(model: Model, backend: str):
    """``bpir.compile`` ahead of time on the example arguments."""
    import bpir

    if backend not in bpir.backends():
        raise UserError(f"backend {backend!r} is not usable here; usable: {', '.join(bpir.backends())}")
    return user_call(model, f"compiling ({backend})", bpir.compile, model.fn, backend=backend,
                     example_args=model.args)  # fmt: skip


def parse_backends(text: str | None, default: list[str]) -> list[str]:
    """A comma-separated backend list, each checked against what runs here."""
    import bpir

    names = [b.strip() for b in text.split(",") if b.strip()] if text else default
    usable = bpir.backends()
    bad = [b for b in names if b not in usable]
    if bad:
        raise UserError(f"backend {', '.join(bad)} not usable here; usable: {', '.join(usable)}")
    return names
