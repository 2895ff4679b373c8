"""The installed layout: one import namespace (`bpir`), nothing else in site-packages, and an
installed bpir that works from a directory holding its own `backends/`, `frontends/`, `examples/`."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import zipfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

USER_PROGRAM = textwrap.dedent("""
    import numpy as np, bpir, backends, frontends, examples
    assert backends.MINE and frontends.MINE and examples.MINE  # the user's own packages
    import bpir.backends.numpy.backend as b
    assert "site-packages" in b.__file__ or {root!r} in b.__file__ or {target!r} in b.__file__, b.__file__
    f = bpir.compile(lambda x: np.tanh(x) * 2.0, backend="numpy", example_args=(np.ones(3),))
    print(float(f(np.ones(3)).sum()), ",".join(bpir.backends()))
""")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", ROOT, "--no-deps", "-q", "-w", str(out)],
                   check=True, capture_output=True, text=True, timeout=300)  # fmt: skip
    (path,) = [p for p in out.iterdir() if p.suffix == ".whl"]
    return path


def _repo_modules() -> set[str]:
    """Every module of the repository's installed packages, under its bpir.* name."""
    names = set()
    for top, prefix in (("bpir", "bpir"), ("frontends", "bpir/frontends"), ("backends", "bpir/backends")):
        for dirpath, dirnames, files in os.walk(os.path.join(ROOT, top)):
            dirnames[:] = [d for d in dirnames if d != "__pycache__"]
            rel = os.path.relpath(dirpath, os.path.join(ROOT, top))
            for f in files:
                if f.endswith(".py"):
                    names.add(os.path.normpath(os.path.join(prefix, rel, f)))
    return names


def test_wheel_installs_only_the_bpir_namespace(wheel):
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
    tops = {n.split("/")[0] for n in names}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"bpir"}, sorted(tops)
    missing = _repo_modules() - set(names)
    assert not missing, (
        f"modules left out of the wheel (add their package to pyproject.toml): {sorted(missing)}"
    )


def _shadowing_dir(tmp_path):
    tmp_path.mkdir(parents=True, exist_ok=True)
    for pkg in ("backends", "frontends", "examples"):
        (tmp_path / pkg).mkdir()
        (tmp_path / pkg / "__init__.py").write_text("MINE = True\n")
    return tmp_path


def test_installed_wheel_works_beside_the_users_own_backends_package(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)],
                   check=True, capture_output=True, text=True, timeout=300)  # fmt: skip
    user = _shadowing_dir(tmp_path / "user_project")
    program = USER_PROGRAM.format(root="<none>", target=str(target))
    env = {**os.environ, "PYTHONPATH": f"{user}{os.pathsep}{target}"}
    out = subprocess.run([sys.executable, "-c", program], cwd=user, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    total, names = out.stdout.split()
    assert float(total) == pytest.approx(6 * 0.7615941559557649)
    assert "numpy" in names.split(",")


def test_editable_install_works_beside_the_users_own_backends_package(tmp_path):
    user = _shadowing_dir(tmp_path)
    program = USER_PROGRAM.format(root=ROOT, target="<none>")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run([sys.executable, "-c", program], cwd=user, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


def test_bpir_backends_is_both_the_function_and_the_package():
    import bpir

    names = bpir.backends()
    import bpir.backends.numpy.backend  # binds the package to the attribute bpir.backends

    assert bpir.backends() == names and "numpy" in names
