"""Parser for the textual IR printed by ``bpir.printer``; errors carry line and column."""

from __future__ import annotations

import base64
import json
import re

import numpy as np

from .errors import ParseError, ShapeError
from .ir import Graph, InputInfo, Node, Value
from .registry import get_op, normalize_attrs
from .types import DTYPES, TensorType

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
    re.VERBOSE,
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
    toks = _Tokens(text)
    graph = _func(toks)
    if toks.peek()[0] != "eof":
        toks.fail("expected end of input")
    return graph


def _type(toks: _Tokens) -> TensorType:
    tok = toks.kind("ident")
    if tok[1] not in DTYPES:
        toks.fail(f"unknown dtype (want one of {', '.join(DTYPES)})", tok)
    toks.expect("[")
    dims = []
    while not toks.accept("]"):
        if dims:
            toks.expect(",")
        dims.append(int(toks.kind("number")[1]))
    return TensorType(tuple(dims), tok[1])


def _func(toks: _Tokens) -> Graph:
    toks.expect("func")
    name = toks.kind("at")[1][1:]
    toks.expect("(")
    env: dict[str, Value] = {}
    inputs, info = [], {}
    while not toks.accept(")"):
        role = toks.next()[1] if toks.peek()[0] == "ident" else ""
        vname = toks.kind("pct")[1]
        toks.expect(":")
        v = Value(_type(toks), vname[1:])
        origin = json.loads(toks.next()[1]) if toks.accept("from") else ""
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
        nodes.append(_node(toks, env))
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


def _node(toks: _Tokens, env) -> Node:
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
    attrs = {}
    if toks.accept("{"):
        while not toks.accept("}"):
            key = toks.kind("ident")[1]
            toks.expect("=")
            attrs[key] = _attr(toks, results[0][1])
            toks.accept(",")
    loc = toks.next()[1][4:-1] if toks.peek()[0] == "loc" else None
    while toks.peek()[0] == "ident" and toks.peek(1)[1] == "=" and toks.peek(2)[1] == "func":
        key = toks.next()[1]
        toks.next()
        attrs[key] = _func(toks)
    if op_tok[1] == "constant" and "value" in attrs and not isinstance(attrs["value"], np.ndarray):
        attrs["value"] = np.array(attrs["value"], dtype=results[0][1].np_dtype)
    try:
        attrs = normalize_attrs(opdef, attrs)
        types = opdef.infer([v.type for v in inputs], attrs)
    except (ShapeError, TypeError) as e:
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


def _attr(toks: _Tokens, result_type: TensorType):
    tok = toks.next()
    kind, val = tok[0], tok[1]
    if kind == "number":
        return float(val) if any(c in val for c in ".eEn") else int(val)
    if kind == "string":
        return json.loads(val)
    if val in ("true", "false"):
        return val == "true"
    if val == "(":
        items = []
        while not toks.accept(")"):
            items.append(_attr(toks, result_type))
            toks.accept(",")
        return tuple(items)
    if val == "dense":
        return _dense(toks, result_type)
    toks.fail("expected an attribute value", tok)


def _dense(toks: _Tokens, t: TensorType) -> np.ndarray:
    toks.expect("<")
    if toks.accept("b64"):
        toks.expect(":")
        raw = base64.b64decode(json.loads(toks.kind("string")[1]))
        arr = np.frombuffer(raw, dtype=t.np_dtype).copy()
    else:
        toks.expect("[")
        vals = []
        while not toks.accept("]"):
            vals.append(toks.next()[1])
            toks.accept(",")
        if t.dtype == "bool":
            arr = np.array([v == "true" for v in vals], dtype=bool)
        elif t.dtype.startswith(("i", "u")):
            arr = np.array([int(v) for v in vals], dtype=t.np_dtype)
        else:
            arr = np.array([float(v) for v in vals], dtype=np.float64).astype(t.np_dtype)
    if arr.size != t.size:
        toks.fail(f"constant has {arr.size} elements, type {t} needs {t.size}")
    toks.expect(">")
    return arr.reshape(t.shape)
