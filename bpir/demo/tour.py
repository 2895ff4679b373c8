"""The bpir tour: trace an MLP training step written in plain NumPy, show its IR, the
backward graph, what each pass did and what was fused, then run it on every backend here
and check the gradients against finite differences."""

from __future__ import annotations

import os
import tempfile
import time

import numpy as np

import bpir
from bpir.demo.models import init_mlp, mlp_batch, mlp_loss, sgd_step, textbook_mlp_loss
from bpir.passes import manager, memory


def section(title: str) -> None:
    print(f"\n=== {title} " + "=" * max(0, 72 - len(title)))


def main(argv=None) -> int:
    sizes, batch = [8, 16, 4], 32
    params = init_mlp(sizes)
    x, labels = mlp_batch(sizes, batch)

    section("1. A textbook MLP in plain NumPy, traced unchanged")
    rng = np.random.default_rng(0)
    args = (rng.standard_normal((3, 5)), np.zeros(5), rng.standard_normal((5, 1)), np.zeros(1),
            rng.standard_normal((16, 3)), rng.standard_normal((16, 1)))  # fmt: skip
    print(bpir.trace(textbook_mlp_loss, *args))

    section("2. The backward graph of the softmax cross-entropy MLP (residuals marked)")
    fwd, bwd = bpir.vjp_graphs(mlp_loss, params, x, labels)
    print(bwd)
    _, bwd_remat = bpir.vjp_graphs(mlp_loss, params, x, labels, remat=True)
    saved = [sum(v.type.nbytes for v in g.inputs[: len(g.inputs) - 1]) for g in (bwd, bwd_remat)]
    print(f"saved for the backward: {saved[0]:,} bytes (save what it reads), "
          f"{saved[1]:,} bytes (min-cut rematerialisation: bpir.vjp_graphs(..., remat=True))")  # fmt: skip

    section("3. One SGD training step, optimized: what each pass changed")
    step = bpir.trace(sgd_step, params, x, labels)
    before = memory.report(step)
    passes = manager.PassReport()
    optimized = manager.optimize(step, report=passes)
    print(passes)
    after = memory.report(optimized)
    print(
        f"\nbytes moved per step: {before['bytes_moved']:,} before fusion -> {after['bytes_moved']:,} after"
    )
    print(f"peak memory: {before['peak_bytes']:,} -> {after['peak_bytes']:,} bytes")
    lines = str(optimized).splitlines()
    fused = [i for i, line in enumerate(lines) if " = fused " in line]
    print(f"{len(fused)} fused groups; the largest region:")
    sizes = [(next(j for j in range(i + 1, len(lines)) if lines[j].strip() == "}") - i, i) for i in fused]
    size, start = max(sizes)
    print("\n".join(lines[start : start + size + 1]))

    section("4. Compiled on each backend available here")
    from bpir.backend_registry import installed

    for backend in sorted(set(installed()) - set(bpir.backends())):
        print(
            f"  {backend:<11} installed but cannot run here (no GPU; NUMBA_ENABLE_CUDASIM=1 runs it simulated)"
        )
    reference = None
    for backend in bpir.backends():
        t0 = time.perf_counter()
        f = bpir.compile(sgd_step, backend=backend, example_args=(params, x, labels))
        compile_s = time.perf_counter() - t0
        loss, new = f(params, x, labels)
        reference = reference if reference is not None else float(loss)
        print(f"  {backend:<11} loss {float(loss):.6f}  (compile {compile_s:.2f} s; "
              f"|loss - numpy| = {abs(float(loss) - reference):.1e})")  # fmt: skip
    print("\nGenerated NumPy source (first lines):")
    f = bpir.compile(sgd_step, backend="numpy", example_args=(params, x, labels))
    print("\n".join(f.source.splitlines()[:14]))

    section("5. Gradients checked against central finite differences (float64)")
    p64 = {k: v.astype(np.float64) for k, v in params.items()}
    print(bpir.check_grad(mlp_loss, p64, x.astype(np.float64), labels))

    section("6. Ahead of time: save, load (no pickle, no re-tracing), run")
    folder = os.path.join(tempfile.mkdtemp(prefix="bpir_tour_"), "sgd_step.bpir")
    f.save(folder)
    print(f"saved {folder}: {', '.join(sorted(os.listdir(folder)))}")
    g = bpir.load(folder)
    print("loaded artifact loss:", float(g(params, x, labels)[0]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
