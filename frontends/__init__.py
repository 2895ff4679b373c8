"""Tracing frontends: Python/NumPy code in, bpir Graph out."""
