"""The exceptions bpir raises; each says what went wrong and where."""


class TraceError(TypeError):
    """A Python operation that cannot be recorded in a static graph (e.g. ``bool()`` of a value)."""


class ShapeError(ValueError):
    """Operands whose shapes or dtypes do not fit an op; names the op, the shapes and the location."""


class ParseError(ValueError):
    """Malformed textual IR; carries the line and column."""

    def __init__(self, message: str, line: int, column: int):
        super().__init__(f"line {line}, column {column}: {message}")
        self.line = line
        self.column = column


class VerifyError(AssertionError):
    """A graph that breaks an IR invariant (types, SSA, dangling values, cycles)."""


class GradCheckError(AssertionError):
    """Analytic and finite-difference gradients disagree."""
