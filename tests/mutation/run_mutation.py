"""Mutation testing with cosmic-ray over bpir/ops, bpir/passes (memory plan included) and the
numba loop generator, against a fast test subset. Not run in CI (pytest does not collect this
folder's files: none is named test_*.py).

Mutants are applied in a scratch copy of the repository (imported through PYTHONPATH, with
bpir/frontends and bpir/backends linked as the installed layout has them), so the working tree
is never modified. ``--sample N`` runs a seeded random sample of the mutants (the full set is
thousands; each costs one run of the subset).

    pip install cosmic-ray        # the 'mutation' extra
    python tests/mutation/run_mutation.py --sample 40 --seed 0 --out /tmp/mutation.json

Prints each mutant's outcome and the score killed / (killed + survived); a survivor must be
read to decide whether it is equivalent (no test could ever see it) before adding a test."""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TARGETS = ["bpir/ops", "bpir/passes", "backends/numba/loops.py"]
# the fast subset: one pytest run per line, stopped at the first failure (the mutant is killed)
FAST_TESTS = [
    "tests/test_bug_killers.py tests/test_fuzz_backends.py tests/test_passes.py tests/test_ir.py -k 'not cuda and not jax'",
    "tests/test_type_rules.py tests/test_autodiff.py -k 'numpy and not numba or type_rules or rules'",
    "tests/test_ops.py -k 'numpy and not numba'",
]


def scratch_copy(dest: Path) -> None:
    """The tracked and untracked (not ignored) files of the repository, laid out for import."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, check=True,
                           capture_output=True, text=True).stdout.split()  # fmt: skip
    for f in files:
        if (ROOT / f).is_file():
            (dest / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / f, dest / f)
    for pkg in ("frontends", "backends"):
        (dest / "bpir" / pkg).symlink_to(dest / pkg, target_is_directory=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sample", type=int, default=0, help="mutants to run (0: all)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=600.0, help="seconds per mutant")
    ap.add_argument("--out", type=Path, default=None, help="JSON file of the outcomes")
    opts = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bpir-mutation-"))
    repo = work / "repo"
    scratch_copy(repo)
    script = work / "fast_tests.sh"
    pytest = f"{sys.executable} -m pytest -x -q -p no:cacheprovider"
    script.write_text("set -e\n" + "".join(f"{pytest} {line}\n" for line in FAST_TESTS))
    test_cmd = f"sh {script}"
    config = work / "cosmic-ray.toml"
    modules = ", ".join(f'"{t}"' for t in TARGETS)
    config.write_text(
        "[cosmic-ray]\n"
        f"module-path = [{modules}]\n"
        f"timeout = {opts.timeout}\n"
        "excluded-modules = []\n"
        f'test-command = "{test_cmd}"\n'
        '[cosmic-ray.distributor]\nname = "local"\n'
    )
    env = {**os.environ, "PYTHONPATH": str(repo), "BPIR_ALLOW_MISSING_BACKENDS": "0"}
    session = work / "session.sqlite"
    subprocess.run(["cosmic-ray", "init", str(config), str(session)], cwd=repo, env=env, check=True)
    items = [json.loads(line)[0] for line in subprocess.run(
        ["cosmic-ray", "dump", str(session)], cwd=repo, env=env, check=True, capture_output=True, text=True
    ).stdout.splitlines()]  # fmt: skip
    print(f"{len(items)} mutants in {TARGETS}", flush=True)
    if opts.sample:
        items = random.Random(opts.seed).sample(items, min(opts.sample, len(items)))
    results, killed, survived = [], 0, 0
    for item in items:
        (mut,) = item["mutations"]
        where = f"{mut['module_path']}:{mut['start_pos'][0]} {mut['operator_name']}#{mut['occurrence']}"
        proc = subprocess.run(
            ["cosmic-ray", "mutate-and-test", mut["module_path"], mut["operator_name"],
             str(mut["occurrence"]), test_cmd],
            cwd=repo, env=env, capture_output=True, text=True, timeout=opts.timeout + 60,
        )  # fmt: skip
        outcome = json.loads(proc.stdout.strip().splitlines()[-1]) if proc.stdout.strip() else {}
        test_outcome = outcome.get("test_outcome")
        killed += test_outcome == "killed"
        survived += test_outcome == "survived"
        results.append({"mutant": where, "outcome": test_outcome, "diff": outcome.get("diff", "")})
        print(f"{test_outcome or 'error':9} {where}", flush=True)
        if test_outcome == "survived":
            print(outcome.get("diff", ""), flush=True)
    total = killed + survived
    print(f"score: {killed}/{total} killed ({100 * killed / max(total, 1):.0f}%) of {len(items)} run")
    if opts.out:
        opts.out.write_text(
            json.dumps({"killed": killed, "survived": survived, "results": results}, indent=1)
        )
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
