"""Op cases for the shared suite (tests/test_ops.py): indexing. Same `Case` and helpers as op_cases."""

from __future__ import annotations

CASES: list = []
