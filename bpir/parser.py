"""Parser for the textual IR printed by ``bpir.printer``; errors carry line and column.

Everything malformed is a ParseError (never another exception): nesting is bounded
(``MAX_REGION_DEPTH`` nested graphs, ``MAX_ATTR_DEPTH`` nested tuples), every attribute is
checked against its op's declared type, and ``loc(...)`` may hold printable characters only."""

from __future__ import annotations

import base64
import json
import re

import numpy as np

from .errors import ParseError
from .ir import Graph, InputInfo, Node, Role, Value
from .location import is_clean
from .registry import get_op, normalize_attrs
from .types import DTYPES, TensorType, is_float

MAX_REGION_DEPTH = 32  # graphs nested in attributes (fused regions, custom VJP functions)
MAX_ATTR_DEPTH = 8  # tuples nested in an attribute value
MAX_DIM = 2**62  # one dimension of a type (their product must stay below it too)

_TOKEN = re.compile(
    r"""(?P<ws>[ \t\r\n]+)
      | (?P<loc>loc\([^)\n]*\))
      | (?P<string>"(?:\\.|[^"\\\n])*")
      | (?P<arrow>->)
      | (?P<number>-?(?:\d+\.?\d*(?:[eE][-+]?\d+)?|inf\b|nan\b))
      | (?P<pct>%[A-Za-z0-9_.?]+)
      | (?P<at>@[A-Za-z0-9_.]+)
      | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
      | (?P<punct>[\[\](){},:=<>])""",
    re.VERBOSE | re.ASCII,
)


class _Tokens:
    def __init__(self, text: str):
        self.toks: list[tuple[str, str, int, int]] = []
        line, line_start, pos = 1, 0, 0
        while pos < len(text):
            m = _TOKEN.match(text, pos)
            if not m:
                raise ParseError(f"unexpected character {text[pos]!r}", line, pos - line_start + 1)
            kind, val = m.lastgroup, m.group()
            if kind != "ws":
                self.toks.append((kind, val, line, m.start() - line_start + 1))
            nl = val.count("\n")
            if nl:
                line += nl
                line_start = m.start() + val.rindex("\n") + 1
            pos = m.end()
        self.toks.append(("eof", "", line, pos - line_start + 1))
        self.i = 0

    def peek(self, k: int = 0):
        return self.toks[min(self.i + k, len(self.toks) - 1)]

    def next(self):
        tok = self.peek()
        self.i += 1
        return tok

    def fail(self, message: str, tok=None):
        _, val, line, col = tok or self.peek()
        raise ParseError(f"{message}, found {val or 'end of input'!r}", line, col)

    def expect(self, val: str):
        tok = self.next()
        if tok[1] != val:
            self.fail(f"expected {val!r}", tok)
        return tok

    def accept(self, val: str) -> bool:
        if self.peek()[1] == val:
            self.i += 1
            return True
        return False

    def kind(self, kind: str):
        tok = self.next()
        if tok[0] != kind:
            self.fail(f"expected {kind}", tok)
        return tok


def parse(text: str) -> Graph:
    """Parse one ``func``; ``str(parse(str(g))) == str(g)`` for every graph."""
    if not isinstance(text, str):
        raise TypeError(f"parse wants the IR text as a str, got {type(text).__name__}")
    toks = _Tokens(text)
    graph = _func(toks, 0)
    if toks.peek()[0] != "eof":
        toks.fail("expected end of input")
    return graph


def _type(toks: _Tokens) -> TensorType:
    tok = toks.kind("ident")
    if tok[1] not in DTYPES:
        toks.fail(f"unknown dtype (want one of {', '.join(DTYPES)})", tok)
    toks.expect("[")
    dims, size = [], 1
    while not toks.accept("]"):
        if dims:
            toks.expect(",")
        dim = toks.next()
        if dim[0] != "number" or not dim[1].isdigit() or len(dim[1]) > 19 or int(dim[1]) > MAX_DIM:
            toks.fail(f"expected a dimension (an integer from 0 to {MAX_DIM})", dim)
        dims.append(int(dim[1]))
        size *= dims[-1]
        if size > MAX_DIM:
            toks.fail(f"type has more than {MAX_DIM} elements", dim)
    return TensorType(tuple(dims), tok[1])


def _string(toks: _Tokens) -> str:
    tok = toks.kind("string")
    try:
        return json.loads(tok[1])
    except ValueError as e:
        toks.fail(f"malformed string ({e.args[0]})", tok)


def _role(toks: _Tokens) -> Role:
    """An input's role word ("residual", "cotangent")."""
    tok = toks.next()
    try:
        return Role(tok[1])
    except ValueError:
        toks.fail(f"unknown input role (roles: {', '.join(r for r in Role if r)})", tok)


def _func(toks: _Tokens, depth: int) -> Graph:
    start = toks.expect("func")
    if depth > MAX_REGION_DEPTH:
        toks.fail(f"graphs nested deeper than {MAX_REGION_DEPTH} levels", start)
    name = toks.kind("at")[1][1:]
    toks.expect("(")
    env: dict[str, Value] = {}
    inputs, info = [], {}
    while not toks.accept(")"):
        role = _role(toks) if toks.peek()[0] == "ident" else Role.NONE
        vname = toks.kind("pct")[1]
        toks.expect(":")
        v = Value(_type(toks), vname[1:])
        origin = _string(toks) if toks.accept("from") else ""
        if role or origin:
            info[len(inputs)] = InputInfo(role, origin)
        _bind(toks, env, vname, v)
        inputs.append(v)
        if not toks.accept(","):
            toks.expect(")")
            break
    toks.expect("->")
    toks.expect("(")
    result_types = []
    while not toks.accept(")"):
        result_types.append(_type(toks))
        toks.accept(",")
    toks.expect("{")
    nodes = []
    while not toks.accept("return"):
        nodes.append(_node(toks, env, depth))
    outputs = [_use(toks, env)]
    while toks.accept(","):
        outputs.append(_use(toks, env))
    toks.expect("}")
    if [v.type for v in outputs] != result_types:
        toks.fail("returned types do not match the header")
    return Graph(name, inputs, nodes, outputs, info)


def _bind(toks, env, name, value):
    if name in env:
        toks.fail(f"value {name} defined twice")
    env[name] = value


def _use(toks, env) -> Value:
    tok = toks.kind("pct")
    if tok[1] not in env:
        toks.fail(f"use of undefined value {tok[1]}", tok)
    return env[tok[1]]


def _node(toks: _Tokens, env, depth: int) -> Node:
    start = toks.peek()
    results = []
    while True:
        name = toks.kind("pct")[1]
        toks.expect(":")
        results.append((name, _type(toks)))
        if not toks.accept(","):
            break
    toks.expect("=")
    op_tok = toks.kind("ident")
    try:
        opdef = get_op(op_tok[1])
    except KeyError:
        toks.fail("unknown op", op_tok)
    inputs = []
    if toks.peek()[0] == "pct" and toks.peek(1)[1] != ":":
        inputs.append(_use(toks, env))
        while toks.accept(","):
            inputs.append(_use(toks, env))
    if opdef.arity is not None and len(inputs) != opdef.arity:
        toks.fail(f"{op_tok[1]} takes {opdef.arity} operand{'s' * (opdef.arity != 1)}, "
                  f"got {len(inputs)}", op_tok)  # fmt: skip
    attrs = {}
    if toks.accept("{"):
        while not toks.accept("}"):
            key_tok = toks.kind("ident")
            toks.expect("=")
            _set_attr(toks, attrs, key_tok, _attr(toks, results[0][1], 0))
            toks.accept(",")
    loc = None
    if toks.peek()[0] == "loc":
        loc_tok = toks.next()
        loc = loc_tok[1][4:-1]
        if not is_clean(loc):
            toks.fail("loc(...) holds a control or line-separator character", loc_tok)
    while toks.peek()[0] == "ident" and toks.peek(1)[1] == "=" and toks.peek(2)[1] == "func":
        key_tok = toks.next()
        toks.next()
        _set_attr(toks, attrs, key_tok, _func(toks, depth + 1))
    if op_tok[1] == "constant" and "value" in attrs and not isinstance(attrs["value"], np.ndarray):
        attrs["value"] = _scalar_constant(toks, attrs["value"], results[0][1], start)
    try:
        attrs = normalize_attrs(opdef, attrs)
        types = opdef.infer([v.type for v in inputs], attrs)
    except (ValueError, TypeError) as e:
        raise ParseError(f"{op_tok[1]}: {e}", start[2], start[3]) from None
    declared = [t for _, t in results]
    if types != declared:
        got = ", ".join(map(str, types))
        raise ParseError(f"{op_tok[1]} produces {got}, but the line declares "
                         f"{', '.join(map(str, declared))}", start[2], start[3])  # fmt: skip
    outs = [Value(t) for t in declared]
    for (name, _), v in zip(results, outs):
        _bind(toks, env, name, v)
    return Node(op_tok[1], inputs, attrs, outs, loc)


def _set_attr(toks: _Tokens, attrs: dict, key_tok, value) -> None:
    if key_tok[1] in attrs:
        toks.fail(f"attribute {key_tok[1]!r} given twice", key_tok)
    attrs[key_tok[1]] = value


def _number(toks: _Tokens, tok) -> int | float:
    val = tok[1]
    if any(c in val for c in ".eEn"):
        return float(val)
    if len(val) > 20:  # past int64 (and Python's int-from-string digit limit)
        toks.fail("integer literal out of range", tok)
    return int(val)


def _attr(toks: _Tokens, result_type: TensorType, depth: int):
    tok = toks.next()
    kind, val = tok[0], tok[1]
    if kind == "number":
        return _number(toks, tok)
    if kind == "string":
        toks.i -= 1
        return _string(toks)
    if val in ("true", "false"):
        return val == "true"
    if val == "(":
        if depth >= MAX_ATTR_DEPTH:
            toks.fail(f"attribute tuples nested deeper than {MAX_ATTR_DEPTH} levels", tok)
        items = []
        while not toks.accept(")"):
            items.append(_attr(toks, result_type, depth + 1))
            toks.accept(",")
        return tuple(items)
    if val == "dense":
        return _dense(toks, result_type)
    toks.fail("expected an attribute value", tok)


def _scalar_constant(toks: _Tokens, value, t: TensorType, at) -> np.ndarray:
    """A rank-0 constant written as a plain literal, held to the result's dtype."""
    if not _fits(value, t.dtype):
        raise ParseError(f"constant attribute 'value': {value!r} is not a {t.dtype} literal", at[2], at[3])
    try:
        arr = np.array(value, dtype=t.np_dtype)
    except (OverflowError, ValueError, TypeError):
        raise ParseError(
            f"constant attribute 'value': {value!r} does not fit {t.dtype}", at[2], at[3]
        ) from None
    if arr.shape != t.shape:
        raise ParseError(f"constant of type {t} written as a scalar", at[2], at[3])
    return arr


def _fits(value, dtype: str) -> bool:
    if dtype == "bool":
        return isinstance(value, bool)
    if dtype.startswith("i"):
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _dense(toks: _Tokens, t: TensorType) -> np.ndarray:
    start = toks.expect("<")
    if toks.accept("b64"):
        toks.expect(":")
        data_tok = toks.peek()
        try:
            raw = base64.b64decode(_string(toks), validate=True)
        except ValueError:
            toks.fail("malformed base64 in dense constant", data_tok)
        if len(raw) != t.nbytes:
            toks.fail(f"dense constant holds {len(raw)} bytes, type {t} needs {t.nbytes}", data_tok)
        arr = np.frombuffer(raw, dtype=t.np_dtype).copy()
        if t.dtype == "bool" and np.any(arr.view(np.uint8) > 1):
            toks.fail("bool dense constant holds bytes other than 0 and 1", data_tok)
    else:
        toks.expect("[")
        vals = []
        while not toks.accept("]"):
            tok = toks.next()
            if tok[0] == "number":
                vals.append(_number(toks, tok))
            elif tok[1] in ("true", "false"):
                vals.append(tok[1] == "true")
            else:
                toks.fail("expected a number, true or false", tok)
            if not _fits(vals[-1], t.dtype):
                toks.fail(f"{tok[1]} is not a {t.dtype} literal", tok)
            toks.accept(",")
        try:
            arr = np.array(vals, dtype=np.float64 if is_float(t.dtype) else t.np_dtype)
            arr = arr.astype(t.np_dtype)
        except (OverflowError, ValueError):
            raise ParseError(f"dense constant values do not fit {t.dtype}", start[2], start[3]) from None
    if arr.size != t.size:
        toks.fail(f"constant has {arr.size} elements, type {t} needs {t.size}")
    toks.expect(">")
    return arr.reshape(t.shape)
