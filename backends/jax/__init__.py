"""JAX backend: generates readable ``jax.numpy``/``jax.lax`` source for the whole graph and runs
it under one ``jax.jit`` (XLA fuses); saves ``jax.export`` artifacts for cpu, cuda and tpu.
``kernels`` holds the helpers (conv, pooling, ...) the generated source calls as ``k.NAME``."""
