"""Lenient reading: every well-formed grounding anywhere in a text, the rest skipped with a reason.

Derived from the same composed grammar as the strict parser, never written twice:

- where a grounding may start: the first literals of each grounding type's rule;
- what a grounding is: each type's rule as a regular expression (:class:`GrammarRegex`), matched
  at each candidate start, its values checked like the strict parser checks them (count,
  ordering, frame bounds);
- why a candidate is malformed: Lark parses it with the composed grammar's ``grounding`` rule
  as the start symbol, and its error (what was found, what was expected) is the reason;
- the reasoning and the answer: the opening and closing literals of the skeleton's ``think``
  and ``answer`` rules.

The scan finds each next well-formed element with one C-level search, and explains the runs of
candidate starts it passed (one problem per run, e.g. a run of "{{{{" is one skipped span),
so reading is linear in the text (Lark explains at most :data:`EXPLAINED` candidates per text,
the others get a short reason).
"""

from __future__ import annotations

import ast
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import lark
import regex
from lark import Tree

from groundkit.errors import FrameError, GrammarError, GroundkitError
from groundkit.frames import ImageSize
from groundkit.text.grammar import ComposedGrammar
from groundkit.text.regex import GrammarRegex
from groundkit.trace import Problem, Segment, Text, Trace

if TYPE_CHECKING:
    from groundkit.text.parser import TraceParser

#: Malformed candidates per text explained by Lark (with expectations); later ones get a short reason.
EXPLAINED = 32
#: The most text after a candidate start that Lark looks at to explain it.
WINDOW = 2048


def first_literals(rules: dict[str, Tree], tree: Any, seen: tuple[str, ...] = ()) -> tuple[set[str], bool] | None:
    """The literal strings a rule's text can start with, and whether it can be empty (None: a terminal may start it)."""
    if not isinstance(tree, Tree):
        return ({ast.literal_eval(tree.value)}, False) if tree.type == "STRING" else None
    kind = tree.data
    if kind == "expansions":
        out: set[str] = set()
        nullable = False
        for child in tree.children:
            found = first_literals(rules, child, seen)
            if found is None:
                return None
            out |= found[0]
            nullable = nullable or found[1]
        return out, nullable
    if kind == "expansion":
        out = set()
        for child in tree.children:
            found = first_literals(rules, child, seen)
            if found is None:
                return None
            out |= found[0]
            if not found[1]:
                return out, False
        return out, True
    if kind == "expr":
        found = first_literals(rules, tree.children[0], seen)
        if found is None:
            return None
        op = str(tree.children[1])
        return found[0], found[1] or op in "?*" or (op == "~" and str(tree.children[2]) == "0")
    if kind in ("value", "literal", "alias"):
        child = tree.children[0]
        if type(child).__name__ == "NonTerminal":
            if child.name in seen:
                return None
            return first_literals(rules, rules[child.name], seen + (child.name,))
        if type(child).__name__ == "Terminal":
            return None
        return first_literals(rules, child, seen)
    return None


def delimiters(rules: dict[str, Tree], name: str) -> tuple[str, str] | None:
    """The opening and closing literals of a skeleton rule such as ``think: "<think>" ... "</think>"``."""
    tree = rules.get(name)
    if tree is None or len(tree.children) != 1:
        return None
    parts = tree.children[0].children
    ends = []
    for part in (parts[0], parts[-1]):
        while isinstance(part, Tree) and part.data in ("value", "literal") and part.children:
            part = part.children[0]
        if isinstance(part, Tree) or getattr(part, "type", None) != "STRING":
            return None
        ends.append(ast.literal_eval(part.value))
    return ends[0], ends[1]


@lru_cache(maxsize=64)
def _grounding_lark(text: str) -> lark.Lark:
    return lark.Lark(text, parser="lalr", lexer="contextual", start="grounding")


class LenientReader:
    """Reads one dialect/frame/type-set leniently; built once per :class:`TraceParser`."""

    def __init__(self, parser: TraceParser):
        self.parser = parser
        grammar: ComposedGrammar = parser.grammar
        self.grammar = grammar
        builder = GrammarRegex(grammar, capture=True, atomic=True)
        self.kinds: list[tuple[str, str]] = []  # (literal, type name)
        alternatives = []
        for t in grammar.types:  # a type whose rule is recursive or starts with a terminal is not read leniently
            first = first_literals(builder.rules, builder.rules[t.name])
            if first is None or first[1] or not all(first[0]):
                continue
            try:
                alternatives.append(builder.rule(t.name))
            except GrammarError:
                continue
            self.kinds += [(lit, t.name) for lit in first[0]]
        self.elements = regex.compile("|".join(alternatives), regex.DOTALL) if alternatives else None
        names = list(self.elements.groupindex) if self.elements else []
        self.terminals = [n for n in names if not n.startswith("G_")]
        self.type_groups = [n for n in names if n.startswith("G_")]
        literals = sorted({lit for lit, _ in self.kinds}, key=len, reverse=True)
        # runs of adjacent candidate starts ("{{{{", "<box<box"): one skipped span each
        self.runs = regex.compile("(?>(?:(?P<L>" + "|".join(regex.escape(lit) for lit in literals) + "))+)") if literals else None
        # whether an element can start right before another start literal ("{" "{"): then every
        # start of a run is tried, otherwise only the last one can begin a well-formed element
        self.adjacent = self.elements is not None and any(
            self.elements.match(a + b, partial=True) is not None for a in literals for b in literals
        )
        self.think = delimiters(builder.rules, "think")
        self.answer = delimiters(builder.rules, "answer")

    def _kind(self, text: str, pos: int) -> str:
        names = sorted({name for lit, name in self.kinds if text.startswith(lit, pos)})
        return names[0] if len(names) == 1 else "grounding"

    def _explain(self, text: str, start: int, end: int, kind: str, detailed: bool) -> Problem:
        """Why the candidate at ``start`` is not a grounding (Lark on the candidate's window)."""
        if not detailed:
            return Problem((start, end), f"malformed {kind}", kind)
        snippet = text[start : min(end, start + WINDOW)]
        try:
            _grounding_lark(self.grammar.text).parse(snippet)
        except lark.exceptions.UnexpectedInput as exc:
            err = self.parser._error(snippet, exc)
        except lark.exceptions.LarkError:
            return Problem((start, end), f"malformed {kind}", kind)
        else:
            return Problem((start, end), f"malformed {kind}", kind)
        expected = f"; expected one of: {', '.join(err.expected[:8])}" if err.expected else ""
        if err.truncated:
            why = "the text ends inside it" if start + len(snippet) >= len(text) else "another element starts inside it"
            return Problem((start, start + len(snippet)), f"unfinished {kind}: {why}{expected}", kind)
        return Problem((start, start + max(err.offset, 1)), f"malformed {kind}: {err.reason}{expected}", kind)

    def _skipped(self, text: str, start: int, end: int, cover: int, explained: int) -> Problem:
        """One problem for the candidate starts from ``start`` (explained on ``text[start:end]``),
        its span reaching at least ``cover`` (the end of their run)."""
        p = self._explain(text, start, end, self._kind(text, start), explained < EXPLAINED)
        return Problem((start, max(p.span[1], cover)), p.reason, p.kind)

    def read(self, text: str, image_size: ImageSize | None) -> Trace:
        """The trace of everything readable in ``text``; what was skipped is in ``trace.problems``."""
        from groundkit.text.parser import BadValues, _Extents

        extents = _Extents(self.grammar.frame, image_size)
        found: list[tuple[tuple[int, int], list[Any]]] = []  # (span, groundings)
        problems: list[Problem] = []
        explained = pos = 0
        runs = list(self.runs.finditer(text)) if self.runs is not None and self.elements is not None else []
        for k, run in enumerate(runs):
            if run.end() <= pos:  # inside an element already read
                continue
            starts = [s for s in run.starts("L") if s >= pos]
            if not starts:
                continue
            m = None
            for s in starts if self.adjacent else starts[-1:]:
                m = self.elements.match(text, s)
                if m is not None:
                    break
            first = starts[0]
            if m is None:
                nxt = runs[k + 1].start() if k + 1 < len(runs) else len(text)
                problems.append(self._skipped(text, first, nxt, run.end(), explained))
                explained += 1
                continue
            if m.start() > first:  # the run's earlier starts begin nothing well-formed
                problems.append(self._skipped(text, first, m.start(), m.start(), explained))
                explained += 1
            span = m.span()
            type_name = next(name[2:] for name in self.type_groups if m.span(name) == span)
            inside = sorted((s, e, name) for name in self.terminals for s, e in m.spans(name))
            try:
                found.append((span, self.parser._element(type_name, inside, span, text, extents)))
            except BadValues as exc:
                problems.append(Problem(span, exc.reason, type_name))
            except FrameError:  # a pixel frame without the image size: the call's problem, not the text's
                raise
            except (GroundkitError, ValueError, ArithmeticError) as exc:  # e.g. an overflowing value
                problems.append(Problem(span, f"{type_name}: {exc}", type_name))
            pos = span[1]
        return self._trace(text, found, problems)

    def _regions(self, text: str) -> tuple[tuple[int, int], str | None, int]:
        """The reasoning region, the answer (None when absent) and where the answer's opening tag is."""
        lo, hi = 0, len(text)
        answer_at = len(text)
        answer = None
        if self.answer is not None:
            open_, close = self.answer
            at = text.rfind(open_)
            if at >= 0:
                answer_at = at
                end = text.find(close, at + len(open_))
                answer = text[at + len(open_) : end if end >= 0 else len(text)]
        if self.think is not None:
            open_, close = self.think
            at = text.find(open_)
            if at >= 0 and at < answer_at:
                lo = at + len(open_)
            end = text.find(close, lo)
            hi = end if end >= 0 and end <= answer_at else min(answer_at, len(text))
        return (lo, max(lo, hi)), answer, answer_at

    def _trace(self, text: str, found: list[tuple[tuple[int, int], list[Any]]], problems: list[Problem]) -> Trace:
        (lo, hi), answer, _ = self._regions(text)
        think: list[Segment] = []
        cursor = lo
        for (s, e), groundings in found:
            if lo <= s and e <= hi:
                if s > cursor:
                    think.append(Text(text[cursor:s], (cursor, s)))
                cursor = e
            think.extend(groundings)
        if hi > cursor:
            think.append(Text(text[cursor:hi], (cursor, hi)))
        think.sort(key=lambda seg: seg.span[0] if seg.span else 0)
        return Trace(tuple(think), answer, dialect=self.grammar.dialect.name, source=text, problems=tuple(problems))
