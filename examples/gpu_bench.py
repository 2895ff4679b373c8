"""GPU benchmark of the numba-cuda backend: builds each workload, checks it against the NumPy
backend (max relative error), times it with CUDA events after warm-up, and compares with
``jax.jit`` on the same GPU (when jax sees one) and the measured device copy bandwidth.

    python -m examples.gpu_bench            # full sizes (real GPU)
    python -m examples.gpu_bench --small    # tiny sizes, also runs under NUMBA_ENABLE_CUDASIM=1
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

import bpir
import bpir.numpy as bnp
from bpir.demo.models import chain, init_mlp, mlp_batch, sgd_step


def _timed(fn, args, reps: int) -> float:
    """Mean milliseconds per call, CUDA events around ``reps`` calls after two warm-ups."""
    from numba import cuda

    for _ in range(2):
        fn(*args)
    cuda.synchronize()
    start, stop = cuda.event(), cuda.event()
    start.record()
    for _ in range(reps):
        fn(*args)
    stop.record()
    stop.synchronize()
    return max(start.elapsed_time(stop), 1e-6) / reps  # the simulator's events report 0


def copy_bandwidth(nbytes: int, reps: int) -> float:
    """Device-to-device copy bandwidth in GB/s (bytes read + written)."""
    from numba import cuda

    a = cuda.device_array(nbytes // 4, np.float32)
    b = cuda.device_array(nbytes // 4, np.float32)
    ms = _timed(lambda: b.copy_to_device(a), (), reps)
    return 2 * nbytes / ms / 1e6


def _jax_time(fn, args, reps: int, precision: str) -> float | None:
    """Mean ms per call of ``jax.jit(fn)`` on the GPU; ``precision`` is jax's default matmul
    precision ("highest" = true float32 like bpir's kernels, "default" lets XLA use TF32)."""
    if fn is None:
        return None
    try:
        import time

        import jax

        if not any(d.platform == "gpu" for d in jax.devices()):
            return None
        with jax.default_matmul_precision(precision):
            jf = jax.jit(fn)
            dev = jax.device_put(args)
            for _ in range(2):
                jax.block_until_ready(jf(*dev))
            t0 = time.perf_counter()
            for _ in range(reps):
                out = jf(*dev)
            jax.block_until_ready(out)
        return (time.perf_counter() - t0) / reps * 1e3
    except Exception as e:  # a peer that fails is reported, not silently dropped
        print(f"jax peer failed: {type(e).__name__}: {e}", file=sys.stderr)
        return None


def _rel_err(got, want) -> float:
    got_l, want_l = bpir.pytree.flatten(got)[0], bpir.pytree.flatten(want)[0]
    errs = [np.max(np.abs(np.asarray(g, np.float64) - w)) / max(np.max(np.abs(w)), 1e-30)
            for g, w in zip(got_l, want_l)]  # fmt: skip
    return float(max(errs))


def _jax_peers() -> dict:
    """The workloads written directly in jax (bpir's models use bpir.numpy functions, which
    jax cannot trace); imported lazily so the simulator runs need no jax."""
    import jax
    import jax.numpy as jnp

    from bpir.bench.jax_peer import jax_step

    return {
        "chain": lambda x: jnp.tanh(x * 0.5 + 1) * jax.nn.sigmoid(x) - jnp.exp(-x * x),
        "softmax": lambda s: jax.nn.softmax(s, axis=-1),
        "matmul": lambda a, b: a @ b,
        "mlp": jax_step,
    }


def workloads(small: bool):
    """(name, peer key, bpir function, arguments, bytes a perfect kernel moves or None)."""
    n = 1 << 12 if small else 64 << 20
    rows, cols = (8, 16) if small else (16384, 1024)
    mm = 32 if small else 4096
    rng = np.random.default_rng(0)
    x = rng.standard_normal(n).astype(np.float32)
    yield "chain 8 ops", "chain", chain, (x,), 2 * x.nbytes
    s = rng.standard_normal((rows, cols)).astype(np.float32)
    yield "softmax rows", "softmax", lambda s: bnp.softmax(s, axis=-1), (s,), 2 * s.nbytes
    a = rng.standard_normal((mm, mm)).astype(np.float32)
    b = rng.standard_normal((mm, mm)).astype(np.float32)
    yield f"matmul {mm}^3", "matmul", lambda a, b: a @ b, (a, b), 3 * a.nbytes
    for sizes, batch in [((784, 128, 10), 128), ((784, 1024, 1024, 10), 256)]:
        if small:
            sizes, batch = tuple(max(2, d // 64) for d in sizes), 8
        params = init_mlp(sizes)
        xb, labels = mlp_batch(sizes, batch)
        name = "mlp " + "-".join(map(str, sizes)) + f" b{batch}"
        yield name, "mlp", sgd_step, (params, xb, labels.astype(np.int32)), None


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--small", "--dry-run", action="store_true", help="tiny sizes (simulator-safe)")
    ap.add_argument("--reps", type=int, default=None)
    ap.add_argument("--only", default="", help="run the workloads whose name contains this")
    opts = ap.parse_args(argv)
    from numba import config, cuda

    sim = bool(config.ENABLE_CUDASIM)
    reps = opts.reps or (2 if opts.small else 20)
    bw = copy_bandwidth(1 << 16 if opts.small else 1 << 30, reps)
    print(f"device: {'CUDA simulator' if sim else cuda.get_current_device().name}; "
          f"copy bandwidth {bw:.1f} GB/s")  # fmt: skip
    print(f"{'workload':<28} {'rel err':>9} {'ms':>9} {'GB/s':>8} {'%copy':>6} {'jax ms':>8} {'x jax':>6}"
          f" {'jax tf32':>9}")  # fmt: skip
    peers = {} if sim else _jax_peers_or_none()
    for name, key, fn, args, nbytes in workloads(opts.small):
        if opts.only not in name:
            continue
        f = bpir.compile(fn, backend="numba-cuda", example_args=args)
        want = bpir.compile(fn, backend="numpy")(*args)
        err = _rel_err(f(*args), want)
        dev = tuple(_to_device(a) for a in args)
        ms = _timed(f, dev, reps)
        gbs = nbytes / ms / 1e6 if nbytes else float("nan")
        jms = None if sim else _jax_time(peers.get(key), args, reps, "highest")
        tms = None if sim else _jax_time(peers.get(key), args, reps, "default")
        ratio = f"{ms / jms:6.2f}" if jms else "     -"
        jtxt = f"{jms:8.3f}" if jms else "       -"
        ttxt = f"{tms:9.3f}" if tms else "        -"
        print(f"{name:<28} {err:9.2e} {ms:9.3f} {gbs:8.1f} {100 * gbs / bw:6.1f} {jtxt} {ratio} {ttxt}")


def _jax_peers_or_none() -> dict:
    try:
        return _jax_peers()
    except ImportError:
        return {}


def _to_device(tree):
    """Arguments as device arrays (pytrees of dicts kept), so timing excludes host copies."""
    from numba import cuda

    if isinstance(tree, dict):
        return {k: _to_device(v) for k, v in tree.items()}
    return cuda.to_device(tree)


if __name__ == "__main__":
    main()
