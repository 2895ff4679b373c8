"""Built-in benchmarks behind ``bpir bench cpu|jax``: bpir backends against hand-written NumPy
and ``jax.jit``, timed round-robin in one process."""
