"""Op cases for the shared suite (tests/test_ops.py): random. Same `Case` and helpers as op_cases."""

from __future__ import annotations

CASES: list = []
