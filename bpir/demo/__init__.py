"""Built-in demo models for ``bpir tour`` and ``bpir ir`` (the CLI needs them installed)."""
