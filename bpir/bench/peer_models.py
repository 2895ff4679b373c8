"""The workloads of ``bpir bench jax``: each a bpir step (plain NumPy code that bpir traces), the
same math written by hand for ``jax.jit``, and its example arguments. The MLP's loss comes in
two formulations: the library's ``cross_entropy`` with integer labels, and NumPy written out
(manual log-softmax, one-hot targets), which bpir differentiates op by op."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

import bpir
from bpir.bench import nets
from bpir.demo.models import init_mlp, mlp_batch, mlp_logits, sgd_step

MLPS = {
    "small MLP 784-128-10 b128": ([784, 128, 10], 128),
    "big MLP 784-1024-1024-10 b256": ([784, 1024, 1024, 10], 256),
}


@dataclass
class Workload:
    name: str
    step: Callable  # traced by bpir
    jax_step: Callable  # jax.jit of the same math
    example: tuple  # NumPy arguments of both


def numpy_loss(params: dict, x, onehot):
    """Softmax cross-entropy written in NumPy: manual log-softmax against one-hot targets."""
    logits = mlp_logits(params, x)
    z = logits - logits.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return -np.mean(np.sum(onehot * logp, axis=1))


def numpy_sgd_step(params: dict, x, onehot, lr=0.1):
    loss, grads = bpir.value_and_grad(numpy_loss)(params, x, onehot)
    return loss, {k: params[k] - lr * grads[k] for k in params}


def _jax_mlp_logits(jnp, params, x):
    n = len(params) // 2
    h = x
    for i in range(1, n):
        h = jnp.maximum(h @ params[f"W{i}"] + params[f"b{i}"], 0)
    return h @ params[f"W{n}"] + params[f"b{n}"]


def jax_mlp_steps() -> tuple[Callable, Callable]:
    """(library-loss step, NumPy-loss step) by hand, jitted: ``jax.nn.log_softmax`` with integer
    labels, and the same written-out log-softmax against one-hot targets."""
    import jax
    import jax.numpy as jnp

    def library_loss(params, x, labels):
        logp = jax.nn.log_softmax(_jax_mlp_logits(jnp, params, x), axis=-1)
        return -jnp.mean(jnp.take_along_axis(logp, labels[:, None], axis=1))

    def manual_loss(params, x, onehot):
        logits = _jax_mlp_logits(jnp, params, x)
        z = logits - logits.max(axis=1, keepdims=True)
        logp = z - jnp.log(jnp.exp(z).sum(axis=1, keepdims=True))
        return -jnp.mean(jnp.sum(onehot * logp, axis=1))

    def sgd(loss_fn):
        @jax.jit
        def step(params, x, targets):
            loss, grads = jax.value_and_grad(loss_fn)(params, x, targets)
            return loss, {k: params[k] - 0.1 * grads[k] for k in params}

        return step

    return sgd(library_loss), sgd(manual_loss)


def workloads(small: bool = False) -> list[Workload]:
    """Both MLPs with both losses, then (unless ``small``) the CNN and the GRU step."""
    library, manual = jax_mlp_steps()
    out = []
    for name, (sizes, batch) in list(MLPS.items())[: 1 if small else None]:
        params = init_mlp(sizes)
        x, labels = mlp_batch(sizes, batch)
        onehot = np.eye(sizes[-1], dtype=np.float32)[labels]
        out.append(Workload(f"{name} cross_entropy", sgd_step, library, (params, x, labels)))
        out.append(Workload(f"{name} NumPy loss", numpy_sgd_step, manual, (params, x, onehot)))
    if not small:
        jax_cnn, jax_gru = nets.jax_steps()
        out.append(
            Workload("CNN step b64 1x28x28", nets.cnn_step, jax_cnn, (nets.init_cnn(), *nets.cnn_batch()))
        )
        params = nets.init_gru()
        example = (params, nets.init_adam(params), *nets.gru_batch())
        out.append(Workload("GRU step 2x8 b16 h32 + Adam", nets.gru_step, jax_gru, example))
    return out
