"""Disk cache faults: the numba backend compiles in memory with one warning per cause when the
cache folder is missing parts, unwritable, not a folder, corrupt, or not trusted (another
owner, writable by others); no call fails because the cache cannot be written; nothing from an
untrusted folder is imported; no temporary file is left behind."""

from __future__ import annotations

import glob
import os
import sys
import warnings

import numpy as np
import pytest
from conftest import assert_close

import bpir
from bpir import cache

pytestmark = pytest.mark.skipif("numba" not in bpir.backends(), reason="numba not installed")

X = np.linspace(-2, 2, 12, dtype=np.float32).reshape(3, 4)


def _fn(c: float):
    return lambda x: np.tanh(x * c) + 1.0


@pytest.fixture(autouse=True)
def fresh_warnings(monkeypatch):
    monkeypatch.setattr(cache, "_warned", set())


def _compile_and_check(c: float, calls: int = 2):
    """Compile and call; every call gives the right answer. Returns the warnings and the kernel's
    module."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        f = bpir.compile(_fn(c), backend="numba", example_args=(X,))
        for _ in range(calls):
            assert_close(f(X), _fn(c)(X), "float32")
    (kernels,) = f._current().run.kernel_modules  # the one kernel's module
    return [w for w in caught if issubclass(w.category, cache.CacheWarning)], kernels


def _forget(kernels) -> None:
    """Let the next compile of the same kernels import them from the folder again."""
    sys.modules.pop(kernels.__name__, None)


def _populate(folder, monkeypatch, c: float):
    monkeypatch.setenv("BPIR_CACHE_DIR", str(folder))
    ws, kernels = _compile_and_check(c)
    assert not ws and os.path.exists(kernels.__file__)
    _forget(kernels)
    return kernels


def _planted(folder, kernels, marker) -> None:
    """A module file with the kernels' name that would write ``marker`` if it were imported."""
    with open(os.path.join(folder, os.path.basename(kernels.__file__)), "a") as fh:
        fh.write(f"\nopen({str(marker)!r}, 'w').close()\n")


def test_missing_folder_is_created_private(tmp_path, monkeypatch):
    folder = tmp_path / "a" / "b"
    monkeypatch.setenv("BPIR_CACHE_DIR", str(folder))
    ws, kernels = _compile_and_check(1.5)
    assert not ws
    assert os.stat(folder).st_mode & 0o777 == 0o700
    assert os.path.dirname(kernels.__file__) == str(folder)


def test_cache_path_is_a_file(tmp_path, monkeypatch):
    path = tmp_path / "file"
    path.write_text("not a folder")
    monkeypatch.setenv("BPIR_CACHE_DIR", str(path))
    ws, kernels = _compile_and_check(1.25)
    assert len(ws) == 1 and "is not a directory" in str(ws[0].message)
    assert getattr(kernels, "__file__", None) is None
    ws2, _ = _compile_and_check(1.375)  # the same cause warns once per process
    assert not ws2
    assert path.read_text() == "not a folder"


def test_pycache_is_a_file(tmp_path, monkeypatch):
    (tmp_path / "__pycache__").write_text("x")
    monkeypatch.setenv("BPIR_CACHE_DIR", str(tmp_path))
    ws, kernels = _compile_and_check(1.75)
    assert len(ws) == 1 and "__pycache__ is not a directory" in str(ws[0].message)
    assert getattr(kernels, "__file__", None) is None


def test_read_only_empty_folder(tmp_path, monkeypatch):
    # tests run as root, which permission bits do not stop: the writability check is patched
    monkeypatch.setattr(cache, "_writable", lambda path: False)
    monkeypatch.setenv("BPIR_CACHE_DIR", str(tmp_path))
    ws, kernels = _compile_and_check(2.25)
    assert len(ws) == 1 and "not writable" in str(ws[0].message)
    assert os.listdir(tmp_path) == []


def test_read_only_folder_holding_the_kernels(tmp_path, monkeypatch):
    _populate(tmp_path, monkeypatch, 2.5)
    before = sorted(os.listdir(tmp_path))
    monkeypatch.setattr(cache, "_writable", lambda path: False)
    ws, kernels = _compile_and_check(2.5, calls=3)
    assert len(ws) == 1 and "not writable" in str(ws[0].message)
    assert sorted(os.listdir(tmp_path)) == before


def test_seal_write_failing_never_fails_a_call(tmp_path, monkeypatch):
    """The seal is written after the first call (the old code raised on every call)."""
    monkeypatch.setenv("BPIR_CACHE_DIR", str(tmp_path))
    real = cache._write_atomic

    def refuse_seal(path, text):
        if path.endswith(".seal.json"):
            raise PermissionError(13, "Permission denied")
        real(path, text)

    monkeypatch.setattr(cache, "_write_atomic", refuse_seal)
    ws, kernels = _compile_and_check(2.75, calls=3)
    assert len(ws) == 1 and "cannot be sealed" in str(ws[0].message)
    assert not os.path.exists(kernels.__file__ + ".seal.json")
    _forget(kernels)
    monkeypatch.setattr(cache, "_write_atomic", real)
    ws, kernels = _compile_and_check(2.75)  # unsealed JIT files are dropped, then rebuilt
    assert not ws and os.path.exists(kernels.__file__ + ".seal.json")


def test_failed_write_leaves_no_temporary_file(tmp_path, monkeypatch):
    monkeypatch.setenv("BPIR_CACHE_DIR", str(tmp_path))

    def no_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", no_replace)
    ws, kernels = _compile_and_check(3.25)
    assert len(ws) == 1 and "cannot be written" in str(ws[0].message)
    assert glob.glob(str(tmp_path / "**" / "*.tmp"), recursive=True) == []


def test_corrupt_entries_are_rebuilt(tmp_path, monkeypatch):
    kernels = _populate(tmp_path, monkeypatch, 3.5)
    jit_files = glob.glob(str(tmp_path / "__pycache__" / "*"))
    assert jit_files
    for path in [kernels.__file__, kernels.__file__ + ".seal.json", *jit_files]:
        with open(path, "wb") as fh:
            fh.write(b"\x00garbage")
    ws, kernels = _compile_and_check(3.5)
    assert not ws
    assert "garbage" not in open(kernels.__file__, errors="replace").read()


@pytest.mark.parametrize("how", ["other_owner", "group_writable", "pycache_other_owner"])
def test_untrusted_folder_is_not_loaded(tmp_path, monkeypatch, how):
    folder = tmp_path / "cache"
    kernels = _populate(folder, monkeypatch, 4.5)
    marker = tmp_path / "imported"
    _planted(folder, kernels, marker)
    other = os.geteuid() + 4321
    if how == "other_owner":
        os.chown(folder, other, -1)
    elif how == "pycache_other_owner":
        os.chown(folder / "__pycache__", other, -1)
    else:
        os.chmod(folder, 0o770)
    ws, _ = _compile_and_check(4.5)
    assert len(ws) == 1
    assert ("owned by another user" if "owner" in how else "writable by group or others") in str(
        ws[0].message
    )
    assert not marker.exists()
