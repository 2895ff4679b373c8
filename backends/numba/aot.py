"""Numba artifacts carrying the kernels' machine code, so that a fresh process with an empty
cache loads them instead of compiling.

``save_artifact`` writes, for every compiled overload of every kernel, Numba's serialized
library's object file into ``kernels.bin`` (not the bitcode Numba keeps for inlining into other
functions: nothing links against a kernel, and parsing it was most of the load time) and a
JSON index of what Numba needs to rebuild the overload (``kernels.json``): argument types in a
small grammar, the mangled names, the environments referenced. No pickle is written or read:
loading parses the JSON, checks every field against what the graph regenerates (the kernel's
module, which is named by a hash of its source, the names Numba's mangler gives that module and
those types) and builds Numba's objects itself.

Object code is machine code: it runs when the kernels are called. The manifest's hashes detect a
corrupt or edited kernel file, but they are not signatures: whoever writes an artifact, hashes
recomputed, chooses the code. So machine code is loaded only when the caller asks for it
(``bpir.load(path, machine_code=True)``: trust the artifact as you would a binary from its
author), and only for the same Numba, Python, bpir and CPU (target triple, CPU name and
features) it was built with; otherwise the kernels are compiled from the checked graph."""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import os
import re
import sys
import warnings
import weakref

import llvmlite.binding as ll
import numba
from numba.core import types
from numba.core.compiler import CompileResult
from numba.core.compiler_lock import global_compiler_lock
from numba.core.environment import Environment
from numba.core.funcdesc import PythonFunctionDescriptor
from numba.core.runtime import rtsys
from numba.core.typed_passes import _reload_parfors
from numba.core.typing.templates import Signature

from bpir.manifest import ArtifactError, read_file

from . import library_kernels
from .kernel_cache import KERNEL, versions

INDEX, OBJECTS = "kernels.json", "kernels.bin"
FORMAT = 2  # 2 adds library kernels and their modules' source digests; 1 is still read
MAX_INDEX_BYTES = 16 << 20
# kernel argument scalar types by their Numba name ("bool", "float32", ...)
_SCALARS = {str(t): t for t in (types.boolean, types.int8, types.int16, types.int32, types.int64, types.uint8,
                                types.uint16, types.uint32, types.uint64, types.float32, types.float64)}  # fmt: skip
_MANGLED = re.compile(r"[A-Za-z0-9_$.]{1,4000}")
_TAG = re.compile(r"[A-Za-z0-9+/=_-]{1,400}")  # Numba's ABI tags: base64 of the compile flags
_NUMBA_MODULE = re.compile(r"numba(\.[a-z_][a-z0-9_]{0,60}){1,6}")
_MODULE = re.compile(r"bpir_numba_kernel_[0-9a-f]{24}")
_SHA256 = re.compile(r"[0-9a-f]{64}")


# library -> Numba's serialized form, for libraries built from object files (which no longer
# hold their object code once the engine has taken it)
SERIALIZED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


class MachineCodeWarning(RuntimeWarning):
    """An artifact's machine code does not fit this machine or library versions: compiling."""


def _target() -> list[str]:
    return list(numba.core.registry.cpu_target.target_context.codegen().magic_tuple())


def _type_data(t) -> list | None:
    """A kernel argument type as JSON data; None for a type outside the grammar."""
    if isinstance(t, types.Array) and _SCALARS.get(str(t.dtype)) == t.dtype:
        return ["array", str(t.dtype), t.ndim, t.layout, t.mutable, t.aligned]
    if _SCALARS.get(str(t)) == t:
        return ["scalar", str(t)]
    return None


def _type_from(data, where: str):
    ok = isinstance(data, list) and data and data[0] in ("array", "scalar")
    if ok and data[0] == "scalar" and len(data) == 2 and data[1] in _SCALARS:
        return _SCALARS[data[1]]
    if ok and data[0] == "array" and len(data) == 6:
        _, dtype, ndim, layout, mutable, aligned = data
        if (dtype in _SCALARS and type(ndim) is int and 0 <= ndim <= 32 and layout in ("C", "F", "A")
                and type(mutable) is bool and type(aligned) is bool):  # fmt: skip
            return types.Array(_SCALARS[dtype], ndim, layout, readonly=not mutable, aligned=aligned)
    raise ArtifactError(f"{where}: argument type {str(data):.80} is not a kernel argument type")


def _functions(module) -> dict:
    """The compiled functions of a module whose machine code is carried, by name: a generated
    module's one kernel, or a library module's kernels."""
    return (
        library_kernels.dispatchers(module)
        if library_kernels.is_library(module)
        else {KERNEL: getattr(module, KERNEL)}
    )


def _entry(module, function: str, cres, blob: bytearray) -> dict | None:
    """The index entry of one compiled overload (its bytes appended to ``blob``), or None when
    it cannot be carried (then the loader compiles it)."""
    lib = cres.library
    libdata = SERIALIZED.get(lib)
    if libdata is None:
        try:
            libdata = lib.serialize_using_object_code()
        except (ValueError, RuntimeError):  # compiled without object caching (in memory)
            return None
    name, kind, (obj, _bitcode) = libdata
    # a loaded overload lists them; a compiled one is scanned as Numba's own cache does
    referenced = (
        cres.referenced_envs if cres.referenced_envs is not None else cres._find_referenced_environments()
    )
    envs = [(e.globals.get("__name__"), e.env_name) for e in referenced]
    reload_init = cres.reload_init or ()
    parallel = bool(reload_init)
    if (kind != "object" or cres.objectmode or cres.lifted or cres.environment.consts
            or cres.signature.return_type != types.none
            or any(f is not _reload_parfors for f in reload_init)
            or any(e.consts for e in referenced)):  # fmt: skip
        return None
    args = [_type_data(t) for t in cres.signature.args]
    if None in args:
        return None
    fd = cres.fndesc
    entry = {
        "module": module.__name__,
        "function": function,
        "library": name,
        "args": args,
        "unique_name": fd.unique_name,
        "uid": fd.uid,
        "abi_tags": list(fd.abi_tags),
        "mangled_name": fd.mangled_name,
        "env_name": fd.env_name,
        "referenced_envs": [list(e) for e in envs],
        "parallel": parallel,  # parallel loops: Numba's thread pool is started before loading
        "object": [len(blob), len(obj)],
    }
    blob += obj
    return entry


def machine_code(modules: list, library_overloads: set | None = None) -> tuple[str, bytes, int]:
    """(JSON index, object files, generated kernels' overloads left out) of the compiled
    kernels of ``modules`` (generated kernel modules and library modules). A library function
    that cannot be carried (one returning a value, which only other library kernels call, so
    its code is inside theirs) is left out silently, and so is any library overload not in
    ``library_overloads`` ((module, function, signature) triples) when that is given."""
    blob, entries, left = bytearray(), [], 0
    with global_compiler_lock:  # no thread adds an overload while they are listed
        overloads = [(m, fn, list(d.overloads.values())) for m in modules for fn, d in _functions(m).items()]
    if library_overloads is not None:
        overloads = [
            (m, fn, [c for c in compiled if (m.__name__, fn, c.signature.args) in library_overloads])
            if library_kernels.is_library(m)
            else (m, fn, compiled)
            for m, fn, compiled in overloads
        ]
    for module, function, compiled in overloads:
        for cres in compiled:
            entry = _entry(module, function, cres, blob)
            if entry is not None:
                entries.append(entry)
            elif not library_kernels.is_library(module):
                left += 1
    libraries = {
        m.__name__: library_kernels.digest(m.__name__) for m in modules if library_kernels.is_library(m)
    }
    index = {"format": FORMAT, "versions": versions(), "target": _target(), "libraries": libraries,
             "kernels": entries}  # fmt: skip
    return json.dumps(index), bytes(blob), left


def fits(index: dict) -> bool:
    """Was the index's machine code built by these library versions for this CPU, and its
    library kernels from the text of this bpir's library modules?"""
    same_text = all(library_kernels.digest(name) == sha for name, sha in index["libraries"].items())
    return index["versions"] == versions() and index["target"] == _target() and same_text


def add_overloads(index: dict, modules: list, blob: bytes, where: str) -> None:
    """Give each kernel of ``modules`` the overloads the index holds for it (checked first)."""
    by_name = {m.__name__: m for m in modules}
    with global_compiler_lock:  # no thread compiles these kernels meanwhile
        for k, entry in enumerate(index["kernels"]):
            _add_overload(entry, by_name, blob, f"{where} kernel {k}")


def save_artifact(executable, folder: str, **_options) -> dict:
    """Write the kernels' machine code and its index; returns the manifest's backend fields."""
    run = executable.run
    modules = getattr(run, "kernel_modules", []) + getattr(run, "library_modules", [])
    index, blob, left = machine_code(modules, getattr(run, "library_overloads", set()))
    if left:
        warnings.warn(f"{left} kernel overload(s) carry no machine code (not serializable): loading "
                      "compiles them", MachineCodeWarning, stacklevel=3)  # fmt: skip
    with open(os.path.join(folder, INDEX), "w") as fh:
        fh.write(index)
    with open(os.path.join(folder, OBJECTS), "wb") as fh:
        fh.write(blob)
    return {"kernels": INDEX, "kernels_sha256": hashlib.sha256(index.encode()).hexdigest(),
            "objects": OBJECTS, "objects_sha256": hashlib.sha256(blob).hexdigest()}  # fmt: skip


def load_artifact(graph, manifest: dict, folder: str, machine_code: bool = False):
    """(run, source) for the graph, with the artifact's machine code when ``machine_code`` and
    it fits this machine; the kernel files are checked against their hashes either way."""
    from .backend import compile_graph

    files = manifest["backend_files"]
    raw = read_file(folder, files["kernels"], "backend_files.kernels", MAX_INDEX_BYTES)
    blob = read_file(folder, files["objects"], "backend_files.objects")
    for field, data in (("kernels", raw), ("objects", blob)):
        if hashlib.sha256(data).hexdigest() != files[f"{field}_sha256"]:
            raise ArtifactError(f"{folder}: backend_files.{field} ({files[field]}) does not match the "
                                "manifest's hash (corrupt or tampered kernel file)")  # fmt: skip
    index = read_index(raw, f"{folder}: backend_files.kernels")
    run, source = compile_graph(graph)
    if not machine_code:
        return run, source
    if not fits(index):
        warnings.warn(f"{folder}: machine code built for {index['versions']} on {index['target'][:2]}, this is "
                      f"{versions()} on {_target()[:2]}: compiling the kernels", MachineCodeWarning, stacklevel=4)  # fmt: skip
        return run, source
    libraries = getattr(run, "library_modules", [])
    with library_kernels.loading(libraries):
        add_overloads(
            index, getattr(run, "kernel_modules", []) + libraries, blob, f"{folder}: {files['kernels']}"
        )
    # saved again before any call, the function carries the library overloads it was loaded with
    getattr(run, "library_overloads", set()).update(
        (e["module"], e["function"], tuple(_type_from(t, folder) for t in e["args"]))
        for e in index["kernels"]
        if e["module"] in library_kernels.NAMES
    )
    return run, source


def read_index(raw: bytes, where: str) -> dict:
    """The kernel index, its structure checked (the entries are checked as they are loaded)."""
    try:
        index = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise ArtifactError(f"{where} is not JSON text") from None
    if isinstance(index, dict) and index.get("format") == 1:  # generated kernels only
        index = _from_format_1(index)
    if not (
        isinstance(index, dict) and set(index) == {"format", "versions", "target", "libraries", "kernels"}
    ):
        raise ArtifactError(f"{where} must be an object with format, versions, target, libraries, kernels")
    if index["format"] != FORMAT or not isinstance(index["versions"], str):
        raise ArtifactError(f"{where}: format must be {FORMAT} (or 1) and versions a string")
    libraries = index["libraries"]
    if not (isinstance(libraries, dict) and set(libraries) <= set(library_kernels.NAMES)
            and all(isinstance(d, str) and _SHA256.fullmatch(d) for d in libraries.values())):  # fmt: skip
        raise ArtifactError(f"{where}: libraries must map bpir's library kernel modules to SHA-256 digests")
    target = index["target"]
    if not (isinstance(target, list) and len(target) == 3 and all(isinstance(s, str) for s in target)):
        raise ArtifactError(f"{where}: target must be three strings")
    if not isinstance(index["kernels"], list):
        raise ArtifactError(f"{where}: kernels must be a list")
    return index


def _from_format_1(index: dict) -> dict:
    """A format 1 index as format 2: no library kernels, every entry its module's ``kernel``."""
    kernels = index.get("kernels")
    if isinstance(kernels, list):
        kernels = [{**e, "function": KERNEL} if isinstance(e, dict) else e for e in kernels]
    return {**index, "format": FORMAT, "libraries": {}, "kernels": kernels}


_ENTRY_KEYS = {"module", "function", "library", "args", "unique_name", "uid", "abi_tags", "mangled_name", "env_name",
               "referenced_envs", "parallel", "object"}  # fmt: skip


def _span(value, blob: bytes, where: str, field: str) -> bytes:
    ok = isinstance(value, list) and len(value) == 2 and all(type(v) is int and v >= 0 for v in value)
    if not ok or value[0] + value[1] > len(blob):
        raise ArtifactError(f"{where}: {field} must be [offset, length] inside the objects file")
    return blob[value[0] : value[0] + value[1]]


def _string(entry: dict, field: str, where: str, pattern: re.Pattern = _MANGLED) -> str:
    value = entry[field]
    if not (isinstance(value, str) and pattern.fullmatch(value)):
        raise ArtifactError(f"{where}: {field} is not a plain name")
    return value


def _add_overload(entry, modules: dict, blob: bytes, where: str) -> None:
    """Rebuild one overload from its entry and give it to its kernel's dispatcher."""
    if not (isinstance(entry, dict) and set(entry) == _ENTRY_KEYS):
        raise ArtifactError(f"{where} must have exactly the fields {sorted(_ENTRY_KEYS)}")
    name = entry["module"]
    if name not in library_kernels.NAMES:
        name = _string(entry, "module", where, _MODULE)
    module = modules.get(name)
    if module is None:
        raise ArtifactError(
            f"{where}: module {name} is no kernel of the graph (the kernel file disagrees with it)"
        )
    function = entry["function"]
    dispatcher = _functions(module).get(function) if isinstance(function, str) else None
    if dispatcher is None:
        raise ArtifactError(f"{where}: function {str(function):.80} is no kernel of module {name}")
    if not isinstance(entry["args"], list) or not isinstance(entry["abi_tags"], list):
        raise ArtifactError(f"{where}: args and abi_tags must be lists")
    argtypes = tuple(_type_from(t, where) for t in entry["args"])
    uid, tags = entry["uid"], tuple(entry["abi_tags"])
    if type(uid) is not int or not all(isinstance(t, str) and _TAG.fullmatch(t) for t in tags):
        raise ArtifactError(f"{where}: uid must be an int and abi_tags plain names")
    code = dispatcher.py_func.__code__
    fndesc = PythonFunctionDescriptor(
        native=True, modname=name, qualname=function, unique_name=_string(entry, "unique_name", where),
        doc=dispatcher.py_func.__doc__ or "", typemap=None, restype=types.none, calltypes=None,
        args=code.co_varnames[: code.co_argcount], kws=(), mangler=dispatcher.targetctx.mangler,
        argtypes=argtypes, abi_tags=tags, uid=uid,
    )  # fmt: skip
    if (fndesc.mangled_name, fndesc.env_name) != (entry["mangled_name"], entry["env_name"]):
        raise ArtifactError(f"{where}: mangled names disagree with the kernel's module and types")
    envs = []
    for pair in entry["referenced_envs"] if isinstance(entry["referenced_envs"], list) else [None]:
        if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(s, str) for s in pair)):
            raise ArtifactError(f"{where}: referenced_envs must be [module, name] pairs")
        modname, env_name = pair
        ours = modname in (name, getattr(module, "helpers", module).__name__)  # the kernel's module or header
        if not (ours or _NUMBA_MODULE.fullmatch(modname) and _numba_module(modname)):
            raise ArtifactError(
                f"{where}: environment of module {modname:.80} is neither the kernel's nor Numba's"
            )
        if not _MANGLED.fullmatch(env_name):
            raise ArtifactError(f"{where}: environment name is not a plain name")
        envs.append((modname, env_name))
    obj = _span(entry["object"], blob, where, "object")
    if type(entry["parallel"]) is not bool:
        raise ArtifactError(f"{where}: parallel must be true or false")
    libname = _string(entry, "library", where)
    if argtypes in dispatcher.overloads:  # compiled or loaded already in this process
        return
    ctx = dispatcher.targetctx
    _start_runtime(ctx, entry["parallel"])
    library = _library(ctx, libname, obj, fndesc)
    env = Environment.from_fndesc(fndesc)
    cres = CompileResult(
        target_context=ctx, typing_context=ctx.typing_context, library=library, environment=env,
        entry_point=ctx.get_executable(library, fndesc, env), fndesc=fndesc, type_annotation="",
        signature=Signature(types.none, argtypes, None), objectmode=False, lifted=(), typing_error=None,
        call_helper=None, metadata=None, reload_init=[_reload_parfors] if entry["parallel"] else [],
        referenced_envs=[],
    )  # fmt: skip
    for modname, env_name in envs:
        library.codegen.set_env(env_name, _environment(modname, env_name))
    dispatcher.add_overload(cres)


_started = {"runtime": False, "threads": False}


def _start_runtime(ctx, parallel: bool) -> None:
    """Numba's runtime (NRT) and, for parallel loops, its thread pool, once per process."""
    if not _started["runtime"]:
        rtsys.initialize(ctx)
        _started["runtime"] = True
    if parallel and not _started["threads"]:
        _reload_parfors()
        _started["threads"] = True


def _library(ctx, name: str, obj: bytes, fndesc):
    """Numba's library around an object file, as its ``_unserialize`` builds one but with an
    empty module in place of the bitcode for linking (no Numba function calls a kernel)."""
    codegen = ctx.codegen()
    library = codegen.create_library(name)
    library.enable_object_caching()
    library._set_compiled_object(obj)
    library._shared_module = ll.parse_assembly("")
    library._finalize_final_module()  # the engine takes the object file from the object cache
    SERIALIZED[library] = (name, "object", (obj, b""))  # to be written again (cache, artifacts)
    codegen._engine._defined_symbols.update((fndesc.llvm_func_name, fndesc.llvm_cpython_wrapper_name))
    return library


def _numba_module(modname: str) -> bool:
    """Import one of Numba's own modules (a kernel's code may reference its environment)."""
    if modname in sys.modules:
        return True
    try:
        spec = importlib.util.find_spec(modname)
    except ImportError:  # a parent is a module, not a package
        return False
    root = os.path.dirname(numba.__file__) + os.sep
    if spec is None or not str(spec.origin).startswith(root):
        return False
    importlib.import_module(modname)
    return True


def _environment(modname: str, env_name: str) -> Environment:
    """The environment of a module already imported (no import is triggered), with no constants."""
    env = Environment._memo.get(env_name)
    if env is None:
        env = Environment(sys.modules[modname].__dict__)
        env.env_name = env_name
        Environment._memo[env_name] = env
    return env
