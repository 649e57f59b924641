"""Regular expressions derived from a composed grammar (it is regular: no recursive rules).

Used by the parser's fast path: one C-level match accepts valid text and yields the spans
of the terminals and groundings; Lark is only needed to explain bad text.
"""

from __future__ import annotations

import ast

import regex
from lark import Token, Tree
from lark.load_grammar import GrammarBuilder

from groundkit.errors import GrammarError
from groundkit.text.grammar import ComposedGrammar


class RecursiveGrammarError(GrammarError):
    """The grammar has a recursive rule, so no regular expression describes it."""


class GrammarRegex:
    """Builds the regex of a rule, inlining sub-rules; captures named terminals and grounding types."""

    def __init__(self, grammar: ComposedGrammar, capture: bool = True, atomic: bool = False):
        builder = GrammarBuilder()
        builder.load_grammar(grammar.text, "<composed>")
        built = builder.build()
        self.rules = {name: tree for name, _params, tree, _opts in built.rule_defs}
        self.lark = grammar.lark
        self.types = set(grammar.type_names)
        self.capture = capture
        self.atomic = atomic
        self._stack: list[str] = []

    def terminal(self, name: str) -> str:
        pattern = self.lark.get_terminal(name).pattern.to_regexp()
        if self.atomic:  # a terminal matches like Lark's lexer: longest run, never given back
            pattern = f"(?>{pattern})"
        if self.capture and not name.startswith("_"):
            return f"(?P<{name}>{pattern})"
        return f"(?:{pattern})"

    def rule(self, name: str) -> str:
        if name in self._stack:
            raise RecursiveGrammarError(f"rule {name!r} is recursive ({' -> '.join(self._stack + [name])})")
        self._stack.append(name)
        try:
            body = self.node(self.rules[name])
        finally:
            self._stack.pop()
        if self.capture and name in self.types:
            return f"(?P<G_{name}>{body})"
        return f"(?:{body})"

    def node(self, tree: Tree | Token) -> str:
        if isinstance(tree, Token):
            if tree.type == "STRING":
                return regex.escape(ast.literal_eval(tree.value))
            if tree.type == "REGEXP":
                raise GrammarError(f"inline regexp {tree.value} in a rule: name it as a terminal")
            raise GrammarError(f"unexpected token {tree!r} in the grammar")
        kind = tree.data
        if kind == "expansions":
            return "(?:" + "|".join(self.node(c) for c in tree.children) + ")"
        if kind == "expansion":
            return "".join(self.node(c) for c in tree.children)
        if kind == "expr":
            inner, op = tree.children[0], tree.children[1]
            quant = {"?": "?", "*": "*", "+": "+"}.get(str(op))
            if quant is None:  # ~ n or ~ n..m
                lo, hi = (tree.children[2], tree.children[3]) if len(tree.children) > 3 else (tree.children[2], tree.children[2])
                quant = f"{{{lo},{hi}}}"
            if self.atomic:  # decided once, as Lark's LALR parser decides: no backtracking into it
                return f"(?>{self.node(inner)}){quant}+"
            return f"(?:{self.node(inner)}){quant}"
        if kind == "value":
            child = tree.children[0]
            if isinstance(child, Tree):
                return self.node(child)
            if type(child).__name__ == "Terminal":
                return self.terminal(child.name)
            if type(child).__name__ == "NonTerminal":
                return self.rule(child.name)
            return self.node(child)
        if kind == "literal":
            return self.node(tree.children[0])
        if kind == "alias":
            return self.node(tree.children[0])
        raise GrammarError(f"grammar construct {kind!r} has no regular-expression form")

    def head_and_loop(self, tree: Tree | Token) -> tuple[str, str] | None:
        """``(head, item)`` of the first ``item*`` reached in sequence from ``tree`` (sub-rules inlined).

        ``head`` is the regex of everything before the loop; None when no such loop is reached
        without passing an alternative or an optional part (which could skip it).
        """
        if isinstance(tree, Token):
            return None
        kind = tree.data
        if kind == "expansions":
            return self.head_and_loop(tree.children[0]) if len(tree.children) == 1 else None
        if kind == "expansion":
            head = ""
            for child in tree.children:
                found = self.head_and_loop(child)
                if found is not None:
                    return head + found[0], found[1]
                head += self.node(child)
            return None
        if kind == "expr" and str(tree.children[1]) == "*":
            return "", self.node(tree.children[0])
        if kind == "value" and type(tree.children[0]).__name__ == "NonTerminal":
            name = tree.children[0].name
            if name in self.types or name in self._stack:
                return None
            self._stack.append(name)
            try:
                return self.head_and_loop(self.rules[name])
            finally:
                self._stack.pop()
        return None


_PATTERNS: dict[tuple[str, bool], regex.Pattern] = {}
_LOOPS: dict[str, regex.Pattern | None] = {}


def grammar_pattern(grammar: ComposedGrammar, capture: bool = True) -> regex.Pattern:
    """The compiled regex of the whole grammar (``start``), with or without named captures."""
    key = (grammar.text, capture)  # the composed text determines the pattern
    if key not in _PATTERNS:
        _PATTERNS[key] = regex.compile(GrammarRegex(grammar, capture, atomic=True).rule("start"), regex.DOTALL)
    return _PATTERNS[key]


def loop_pattern(grammar: ComposedGrammar) -> regex.Pattern | None:
    """``(?P<HEAD>head)(?:item)*`` for the grammar's first top-level loop (the reasoning body), or None.

    Matched at the start of a text it ends where the loop's items stop: a parser can skip the
    whole valid run between the ``HEAD`` group's end and the match's end (Lark's state is the
    same after any number of items), so the cost of explaining bad text no longer grows with
    the valid text before the error.
    """
    if grammar.text not in _LOOPS:
        builder = GrammarRegex(grammar, capture=False, atomic=True)
        try:
            found = builder.head_and_loop(builder.rules["start"])
        except GrammarError:
            found = None
        _LOOPS[grammar.text] = (
            None if found is None else regex.compile(f"(?P<HEAD>{found[0]})(?:{found[1]})*", regex.DOTALL)
        )
    return _LOOPS[grammar.text]
