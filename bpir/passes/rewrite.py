"""A small rewriting driver the simplification passes share: walk nodes in order, let a rule
replace a node's outputs with existing or newly built values, and rebuild the graph.

Passes made of many small rewrites keep them as named rules in a ``RuleTable`` (one function
each, with a one-line docstring, in one ordered table); the pass built from it, a ``RulePass``,
counts how often each rule fired and can run with any of them switched off."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from typing import Any

from ..builder import Builder
from ..ir import Graph, Node, Value
from ..location import at

# rule(builder, node) -> replacement outputs, or None to keep the node
Rule = Callable[[Builder, Node], "list[Value] | None"]


def rewrite(graph: Graph, rule: Rule) -> Graph:
    """``graph`` with each node's outputs replaced as ``rule`` says; a kept node whose inputs
    are unchanged is the same ``Node`` object in both graphs (nodes are never mutated), which
    spares a copy per node and the garbage collector's rescans of those copies."""
    b = Builder(graph.name)
    b.inputs, b.input_info = list(graph.inputs), dict(graph.input_info)
    env: dict[Value, Value] = {v: v for v in graph.inputs}
    for node in graph.nodes:
        inputs = [env[v] for v in node.inputs]
        same = all(a is v for a, v in zip(inputs, node.inputs))
        view = node if same else Node(node.op, inputs, node.attrs, node.outputs, node.loc)
        with at(node.loc):
            outs = rule(b, view)
        if outs is None:
            b.nodes.append(view)
            outs = node.outputs
        env.update(zip(node.outputs, outs))
    return Graph(graph.name, graph.inputs, b.nodes, [env[v] for v in graph.outputs], graph.input_info)


# apply(facts, builder, node) -> replacement outputs, or None when the rule does not match;
# ``facts`` is whatever the pass knows about the graph so far (e.g. each value's producer)
RuleFn = Callable[[Any, Builder, Node], "list[Value] | None"]


@dataclass(frozen=True)
class NamedRule:
    """One rewrite rule: its name (in reports and switches), the ops it looks at (None: every
    op) and the function that returns a node's replacement outputs, or None."""

    name: str
    ops: frozenset[str] | None
    apply: RuleFn

    @property
    def doc(self) -> str:
        """The first line of the rule function's docstring: what it rewrites into what."""
        return self.apply.__doc__.strip().splitlines()[0]  # RuleTable.rule refuses a rule without one


class RuleTable:
    """Named rules in order: on each node the first enabled rule that matches replaces it."""

    def __init__(self) -> None:
        self._rules: dict[str, NamedRule] = {}

    def rule(self, *ops: str) -> Callable[[RuleFn], RuleFn]:
        """Decorator: append ``fn`` to the table under its function name, looking only at nodes
        of ``ops`` (none given: at every node)."""

        def register(fn: RuleFn) -> RuleFn:
            if fn.__name__ in self._rules:
                raise ValueError(f"rule {fn.__name__!r} is registered twice")
            if not (fn.__doc__ or "").strip():
                raise ValueError(f"rule {fn.__name__!r} needs a one-line docstring")
            self._rules[fn.__name__] = NamedRule(fn.__name__, frozenset(ops) if ops else None, fn)
            return fn

        return register

    def __iter__(self) -> Iterator[NamedRule]:
        return iter(self._rules.values())

    def names(self) -> list[str]:
        return list(self._rules)

    def runner(self, disable: Collection[str] = (), fired: Counter | None = None) -> RuleRunner:
        """Apply this table's rules but those in ``disable``, counting the ones that fire."""
        unknown = sorted(set(disable) - set(self._rules))
        if unknown:
            raise ValueError(f"unknown rule {', '.join(map(repr, unknown))}; rules: {', '.join(self._rules)}")
        return RuleRunner([r for r in self._rules.values() if r.name not in disable], fired)


class RuleRunner:
    """The enabled rules of a table, dispatched by op; ``fired`` counts each rule's rewrites."""

    def __init__(self, rules: list[NamedRule], fired: Counter | None = None) -> None:
        self.rules, self.fired = rules, Counter() if fired is None else fired
        self._by_op: dict[str, tuple[NamedRule, ...]] = {}

    def _for(self, op: str) -> tuple[NamedRule, ...]:
        rules = self._by_op.get(op)
        if rules is None:
            rules = self._by_op[op] = tuple(r for r in self.rules if r.ops is None or op in r.ops)
        return rules

    def __call__(self, facts: Any, b: Builder, node: Node) -> list[Value] | None:
        for r in self._for(node.op):
            outs = r.apply(facts, b, node)
            if outs is not None:
                self.fired[r.name] += 1
                return outs
        return None


@dataclass(frozen=True)
class RulePass:
    """A pass built from a rule table: ``pass_(graph)`` like any pass; the pass manager also
    hands it the rule names to skip (``disable``) and a Counter that the rules that fire add to."""

    name: str
    rules: RuleTable
    run: Callable[[Graph, RuleRunner], Graph]

    def __call__(self, graph: Graph, disable: Collection[str] = (), fired: Counter | None = None) -> Graph:
        return self.run(graph, self.rules.runner(disable, fired))
