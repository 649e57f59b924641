"""Text -> :class:`Trace`, derived from the composed grammar (Lark LALR, contextual lexer)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import lark
import regex
from lark import Token, Tree

from groundkit.errors import FrameError, GroundkitError, ParseError
from groundkit.frames import ImageSize
from groundkit.grammar import ComposedGrammar, get_grammar
from groundkit.trace import Grounding, Segment, Text, Trace

FRIENDLY = {
    "TEXT": "text", "NUM": "a number", "LABEL": "a label", "ANSWER": "answer text", "$END": "end of text",
    "_SEP": '","', "_COLON": '":"', "_WS": "whitespace",
}


class TraceParser:
    """Parses one dialect/frame/type-set; build once, call :meth:`parse` many times."""

    def __init__(self, grammar: ComposedGrammar):
        self.grammar = grammar
        self.lark = grammar.lark
        self._patterns: dict[str, Any] = {}

    # --- errors ---------------------------------------------------------------------------
    def describe(self, terminal: str) -> str:
        if terminal in FRIENDLY:
            return FRIENDLY[terminal]
        try:
            pattern = self.lark.get_terminal(terminal).pattern
        except KeyError:
            return terminal
        if isinstance(pattern, lark.lexer.PatternStr):
            return '"' + pattern.value + '"'
        return terminal.lower()

    def _partial(self, terminal: str, rest: str) -> bool:
        """Whether ``rest`` is a proper prefix of some string the terminal matches."""
        if terminal not in self._patterns:
            try:
                self._patterns[terminal] = regex.compile(self.lark.get_terminal(terminal).pattern.to_regexp())
            except KeyError:
                self._patterns[terminal] = None
        pat = self._patterns[terminal]
        return pat is not None and pat.fullmatch(rest, partial=True) is not None

    def _truncated_at(self, text: str, pos: int, allowed: list[str]) -> bool:
        """Whether the text from ``pos`` on is an unfinished start of an allowed terminal."""
        rest = text[pos:]
        return bool(rest) and "\n" not in rest[:200] and any(self._partial(t, rest) for t in allowed)

    def _error(self, text: str, exc: lark.exceptions.LarkError) -> ParseError:
        if isinstance(exc, lark.exceptions.UnexpectedCharacters):
            allowed = sorted(exc.allowed or ())
            pos = exc.pos_in_stream
            found = f"unexpected character {text[pos]!r}"
        elif isinstance(exc, lark.exceptions.UnexpectedToken):
            allowed = sorted(exc.accepts or exc.expected or ())
            pos = exc.token.start_pos if exc.token.start_pos is not None else len(text)
            found = f"unexpected {str(exc.token)[:30]!r}"
            if exc.token.type == "$END":
                pos = len(text)
        elif isinstance(exc, lark.exceptions.UnexpectedEOF):
            allowed, pos, found = sorted(exc.expected or ()), len(text), ""
        else:
            return ParseError(str(exc), text, 0)
        expected = [self.describe(t) for t in allowed]
        if pos >= len(text):
            return ParseError("text ended before the trace was complete", text, len(text), expected, truncated=True)
        last = (getattr(exc, "token_history", None) or [None])[-1]
        extends_last = last is not None and last.end_pos == pos and self._truncated_at(text, last.start_pos, [last.type])
        if extends_last or self._truncated_at(text, pos, allowed):
            return ParseError("text ends inside an unfinished element", text, len(text), expected, truncated=True)
        return ParseError(found, text, pos, expected)

    # --- parsing --------------------------------------------------------------------------
    def parse(self, text: str, image_size: ImageSize | None = None) -> Trace:
        """Parse ``text``; raise :class:`ParseError` with position and expectations on bad text."""
        if not isinstance(text, str):
            raise ParseError(f"expected text, got {type(text).__name__}", "", 0)
        try:
            tree = self.lark.parse(text)
        except lark.exceptions.UnexpectedInput as exc:
            raise self._error(text, exc) from None
        return self._build(tree, text, image_size)

    def is_valid_prefix(self, text: str) -> bool:
        """True when ``text`` parses, or is cut short of a text that would (a truncated completion)."""
        try:
            self.parse(text)
        except ParseError as err:
            return err.truncated
        except FrameError:
            return True
        return True

    def _build(self, tree: Tree, text: str, size: ImageSize | None) -> Trace:
        think: list[Segment] = []
        answer: str | None = None
        for part in tree.children:
            if not isinstance(part, Tree):
                continue
            if part.data == "think":
                for child in part.children:
                    if isinstance(child, Token):
                        think.append(Text(str(child), (child.start_pos, child.end_pos)))
                    else:
                        think.extend(self._groundings(child.children[0], text, size))
            elif part.data == "answer":
                answer = "".join(str(t) for t in part.children if isinstance(t, Token))
        return Trace(tuple(think), answer, dialect=self.grammar.dialect.name, source=text)

    def _groundings(self, node: Tree, text: str, size: ImageSize | None) -> list[Grounding]:
        gtype = self.grammar.grounding_type(str(node.data))
        syntax = self.grammar.syntax(gtype.name)
        tokens: Sequence[Token] = list(node.scan_values(lambda v: isinstance(v, Token)))
        span = (node.meta.start_pos, node.meta.end_pos)
        frame = self.grammar.frame
        out = []
        try:
            raws = syntax.reader(tokens)
        except GroundkitError as exc:
            raise ParseError(str(exc), text, span[0]) from None
        for label, nums in raws:
            values = [float(n) for n in nums]
            problem = gtype.check_values(values)
            if problem:
                raise ParseError(problem, text, span[0])
            axes = gtype.axes(len(values))
            for tok, value, axis in zip(nums, values, axes):
                problem = frame.check(value, axis, size)
                if problem:
                    raise ParseError(problem, text, getattr(tok, "start_pos", span[0]) or span[0])
            coords = tuple(frame.to_unit(v, a, size) for v, a in zip(values, axes))
            out.append(Grounding(gtype.name, coords, label, frame.name, tuple(values), span))
        return out


def get_parser(dialect: str = "groundkit", frame: str | None = None, types: Sequence[str] | None = None) -> TraceParser:
    """A parser for a dialect (default frame and every supported type unless given)."""
    return TraceParser(get_grammar(dialect, frame, types))


def parse(
    text: str,
    dialect: str = "groundkit",
    frame: str | None = None,
    types: Sequence[str] | None = None,
    image_size: ImageSize | tuple[int, int] | None = None,
) -> Trace:
    """Parse model output in ``dialect`` into a :class:`Trace` (canonical unit coordinates)."""
    if isinstance(image_size, tuple):
        image_size = ImageSize(*image_size)
    return get_parser(dialect, frame, types).parse(text, image_size)
