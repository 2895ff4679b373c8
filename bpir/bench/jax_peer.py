"""Benchmark: the MLP training steps through bpir's JAX backend against the same model written
by hand as ``jax.jit`` of ``jax.value_and_grad`` plus the SGD update, in one process. Prints
medians, the ratio, and the op counts of both optimized HLO modules (they should match up to
naming when bpir lowers to the same computation).

    python -m bpir.bench.jax_peer [--small]     (or: bpir bench jax)"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from functools import partial

import jax
import jax.numpy as jnp

import bpir
from bpir.bench.timing import interleaved_medians, table
from bpir.demo.models import init_mlp, mlp_batch, sgd_step

MODELS = {
    "small MLP 784-128-10 b128": ([784, 128, 10], 128),
    "big MLP 784-1024-1024-10 b256": ([784, 1024, 1024, 10], 256),
}


def jax_loss(params, x, labels):
    n = len(params) // 2
    h = x
    for i in range(1, n):
        h = jnp.maximum(h @ params[f"W{i}"] + params[f"b{i}"], 0)
    logits = h @ params[f"W{n}"] + params[f"b{n}"]
    logp = jax.nn.log_softmax(logits, axis=-1)
    return -jnp.mean(jnp.take_along_axis(logp, labels[:, None], axis=1))


@jax.jit
def jax_step(params, x, labels, lr=0.1):
    loss, grads = jax.value_and_grad(jax_loss)(params, x, labels)
    return loss, {k: params[k] - lr * grads[k] for k in params}


def hlo_op_counts(compiled_text: str) -> Counter:
    """Instruction opcodes of an optimized HLO module (fusion bodies included)."""
    ops = re.findall(r"=\s*[a-z0-9\[\]{},:]+\s+([a-z][a-z0-9\-]*)\(", compiled_text)
    return Counter(op for op in ops if op not in ("parameter", "tuple", "get-tuple-element"))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--small", action="store_true", help="only the small MLP, fewer repeats")
    args = parser.parse_args(argv)
    rows = [["model", "bpir jax ms", "jax.jit ms", "ratio", "HLO ops bpir", "HLO ops jax"]]
    for name, (sizes, batch) in list(MODELS.items())[: 1 if args.small else None]:
        params = init_mlp(sizes)
        x, labels = mlp_batch(sizes, batch)
        f = bpir.compile(sgd_step, backend="jax", example_args=(params, x, labels))
        dev = jax.device_put((params, x))
        with jax.enable_x64(True):
            dev_labels = jax.device_put(labels)
        mine, theirs = interleaved_medians(
            [partial(f, dev[0], dev[1], dev_labels), partial(jax_step, dev[0], dev[1], dev_labels)],
            per_round=20,
        )
        ours_hlo = f._current().run.lower().compile().as_text()
        with jax.enable_x64(True):
            their_hlo = jax_step.lower(dev[0], dev[1], dev_labels).compile().as_text()
        a, b = hlo_op_counts(ours_hlo), hlo_op_counts(their_hlo)
        rows.append([name, f"{mine * 1e3:.3f}", f"{theirs * 1e3:.3f}", f"{mine / theirs:.3f}",
                     str(sum(a.values())), str(sum(b.values()))])  # fmt: skip
        diff = {k: (a[k], b[k]) for k in sorted(set(a) | set(b)) if a[k] != b[k]}
        print(f"{name}: HLO opcodes that differ (bpir, jax): {diff or 'none'}")
    print(table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
