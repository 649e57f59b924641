"""Text -> :class:`Trace`, derived from the composed grammar (Lark LALR, contextual lexer)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import lark
import regex
from lark import Token, Tree

from groundkit.errors import FrameError, GrammarError, GroundkitError, ParseError
from groundkit.frames import Frame, ImageSize
from groundkit.interfaces.grounding import LABEL_TERMINALS, NUM_TERMINALS, default_reader, label_text
from groundkit.text.grammar import ComposedGrammar, get_grammar
from groundkit.text.lenient import LenientReader
from groundkit.text.regex import grammar_pattern, loop_pattern
from groundkit.trace import Grounding, Segment, Text, Trace

FRIENDLY = {
    "TEXT": "text", "NUM": "a number", "LABEL": "a label", "ANSWER": "answer text", "$END": "end of text",
    "_SEP": '","', "_COLON": '":"', "_WS": "whitespace",
    "_JSEP": '","', "_JCOLON": '":"', "_JWS": "whitespace", "JLABEL": "a label", "_JEXTRA": 'another "key": value',
    "MOLMO_NUM": "a number", "JNUM": "a number", "_MOLMO_SP": "a space",
}


class BadValues(Exception):
    """Well-formed text whose values cannot be a grounding (count, ordering, frame bounds).

    Internal: the strict parser turns it into a :class:`ParseError` (line, column, excerpt),
    lenient reading into a ``Problem`` without building an excerpt per skipped grounding.
    """

    def __init__(self, reason: str, offset: int):
        super().__init__(reason)
        self.reason, self.offset = reason, offset


class TraceParser:
    """Parses one dialect/frame/type-set; build once, call :meth:`parse` many times.

    The parser reads the grammar's canonical forms and the native forms its types accept
    (``Syntax.reading_rule``); ``native=False`` reads only the canonical forms, the language
    the decoder writes and the exports describe.
    """

    def __init__(self, grammar: ComposedGrammar, fast: bool = True, native: bool = True):
        self.composed = grammar  # as given (what the decoder and the formatter use)
        if native:
            grammar = grammar.for_reading()
        self.grammar = grammar
        self.lark = grammar.lark
        self._patterns: dict[str, Any] = {}
        self._fast = self._loop = None
        self._lenient: LenientReader | None = None
        self._kinds: dict[str, tuple[Any, bool]] = {}
        self._axes: dict[tuple[str, int], tuple[str, ...]] = {}
        if fast:
            try:
                self._fast = grammar_pattern(grammar)
                self._loop = loop_pattern(grammar)
            except GrammarError:  # e.g. a plugin's recursive rule: Lark alone parses it
                self._fast = self._loop = None

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
    def parse(self, text: str, image_size: ImageSize | None = None, lenient: bool = False) -> Trace:
        """Parse ``text``; raise :class:`ParseError` with position and expectations on bad text.

        ``lenient=True`` never raises for content: text that does not parse strictly is read by
        :class:`~groundkit.text.lenient.LenientReader` (every well-formed grounding anywhere,
        the skipped ones in ``trace.problems``).
        """
        if not isinstance(text, str):
            raise ParseError(f"expected text, got {type(text).__name__}", "", 0)
        if lenient:
            if self._fast is None:
                try:
                    return self.parse(text, image_size)
                except ParseError:
                    return self.lenient_reader().read(text, image_size)
            match = self._fast.fullmatch(text)  # valid text reads the same both ways; no error to explain
            if match is not None:
                try:
                    return self._from_match(match, text, image_size)
                except BadValues:
                    pass
            return self.lenient_reader().read(text, image_size)
        try:
            return self._strict(text, image_size)
        except BadValues as bad:
            raise ParseError(bad.reason, text, bad.offset) from None

    def _strict(self, text: str, image_size: ImageSize | None) -> Trace:
        match = self._fast.fullmatch(text) if self._fast is not None else None
        if match is not None:
            return self._from_match(match, text, image_size)
        if self._fast is not None:
            self._explain_skipping_valid_run(text)
        try:
            tree = self.lark.parse(text)
        except lark.exceptions.UnexpectedInput as exc:
            raise self._error(text, exc) from None
        return self._build(tree, text, image_size)

    def _explain_skipping_valid_run(self, text: str) -> None:
        """Raise the error of bad ``text`` in time independent of its valid reasoning run.

        The regex loop finds where the reasoning body's well-formed items stop; Lark parses the
        text with that run cut out (its parser state is the same after any number of items) and
        the error's offset is moved back. Returns when there is nothing to cut or the cut text
        parses (then the caller's full Lark parse decides).
        """
        m = self._loop.match(text) if self._loop is not None else None
        if m is None or m.end() - m.end("HEAD") < 256:
            return
        head, cut = m.end("HEAD"), m.end() - m.end("HEAD")
        reduced = text[:head] + text[m.end():]
        try:
            self.lark.parse(reduced)
        except lark.exceptions.UnexpectedInput as exc:
            err = self._error(reduced, exc)
            offset = err.offset + cut if err.offset >= head else err.offset
            raise ParseError(err.reason, text, offset, err.expected, err.truncated) from None

    def lenient_reader(self) -> LenientReader:
        """The lenient reader of this grammar (built on first use)."""
        if self._lenient is None:
            self._lenient = LenientReader(self)
        return self._lenient

    def is_valid_prefix(self, text: str) -> bool:
        """True when ``text`` parses, or is cut short of a text that would (a truncated completion)."""
        try:
            self.parse(text)
        except ParseError as err:
            return err.truncated
        except FrameError:
            return True
        return True

    def _from_match(self, m: Any, text: str, size: ImageSize | None) -> Trace:
        """Build the trace from the derived regex's captures (the fast path for valid text)."""
        groups = m.re.groupindex
        terminals = sorted(
            (start, end, name) for name in groups if name not in ("TEXT", "ANSWER") and not name.startswith("G_")
            for start, end in m.spans(name)
        )
        items = [(start, end, None) for start, end in m.spans("TEXT")] if "TEXT" in groups else []
        for name in groups:
            if name.startswith("G_"):
                items += [(start, end, name[2:]) for start, end in m.spans(name)]
        items.sort()
        extents = _Extents(self.grammar.frame, size)
        think: list[Segment] = []
        k = 0
        for start, end, type_name in items:
            if type_name is None:
                think.append(Text(text[start:end], (start, end)))
                continue
            while k < len(terminals) and terminals[k][0] < start:
                k += 1
            inside = []
            while k < len(terminals) and terminals[k][1] <= end:
                inside.append(terminals[k])
                k += 1
            think.extend(self._element(type_name, inside, (start, end), text, extents))
        answer = "".join(text[s:e] for s, e in m.spans("ANSWER")) if "ANSWER" in groups else ""
        return Trace(tuple(think), answer, dialect=self.grammar.dialect.name, source=text)

    def _element(
        self, type_name: str, inside: list[tuple[int, int, str]], span: tuple[int, int], text: str, extents: _Extents
    ) -> list[Grounding]:
        """Groundings of one matched element from its captured terminals ``(start, end, name)``."""
        kind = self._kinds.get(type_name)
        if kind is None:
            gtype = self.grammar.grounding_type(type_name)
            kind = self._kinds[type_name] = (gtype, self.grammar.syntax(type_name).reader is default_reader)
        gtype, plain = kind
        if plain:
            label = None
            nums = []
            for s, e, name in inside:
                if name in NUM_TERMINALS:
                    nums.append((s, e))
                elif name in LABEL_TERMINALS and text[s:e].strip():
                    label = label_text(name, text[s:e])
            return [self._grounding(gtype, label, nums, span, text, extents)]
        tokens = [Token(name, text[s:e], start_pos=s, end_pos=e) for s, e, name in inside]
        return self._read(gtype, tokens, span, text, extents)

    def _build(self, tree: Tree, text: str, size: ImageSize | None) -> Trace:
        extents = _Extents(self.grammar.frame, size)
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
                        node = child.children[0]
                        tokens = list(node.scan_values(lambda v: isinstance(v, Token)))
                        gtype = self.grammar.grounding_type(str(node.data))
                        think.extend(self._read(gtype, tokens, (node.meta.start_pos, node.meta.end_pos), text, extents))
            elif part.data == "answer":
                answer = "".join(str(t) for t in part.children if isinstance(t, Token))
        return Trace(tuple(think), answer, dialect=self.grammar.dialect.name, source=text)

    def _read(self, gtype: Any, tokens: Sequence[Token], span: tuple[int, int], text: str, extents: _Extents) -> list[Grounding]:
        """Groundings of one element through its syntax's reader (one element may hold several)."""
        try:
            raws = self.grammar.syntax(gtype.name).reader(tokens)
        except GroundkitError as exc:
            raise BadValues(str(exc), span[0]) from None
        return [
            self._grounding(gtype, label, [(t.start_pos, t.end_pos) for t in nums], span, text, extents)
            for label, nums in raws
        ]

    def _grounding(
        self, gtype: Any, label: str | None, nums: list[tuple[int, int]], span: tuple[int, int], text: str, extents: _Extents
    ) -> Grounding:
        """Check the written values (count, ordering, frame bounds, the type's minimums) and convert
        them to the unit frame; messages name the type's fields."""
        values = [float(text[s:e]) for s, e in nums]
        problem = gtype.check_values(values)
        if problem:
            raise BadValues(problem, span[0])
        frame = self.grammar.frame
        axes = self._axes.get((gtype.name, len(values)))
        if axes is None:
            axes = self._axes[(gtype.name, len(values))] = gtype.axes(len(values))
        if extents.linear:
            scale = extents.get()
            coords = []
            for i, ((s, _), value, axis) in enumerate(zip(nums, values, axes)):
                hi = scale[axis]
                if not 0 <= value <= hi:
                    raise BadValues(frame.check(value, axis, extents.size, gtype.value_names(len(values))[i]) or "out of bounds", s)
                coords.append(value / hi)
        else:
            named = type(frame).check is Frame.check  # a plugin frame's own check may not take a field name
            names = gtype.value_names(len(values))
            for (s, _), value, axis, name in zip(nums, values, axes, names):
                problem = frame.check(value, axis, extents.size, name) if named else frame.check(value, axis, extents.size)
                if problem:
                    raise BadValues(problem, s)
            coords = [frame.to_unit(v, a, extents.size) for v, a in zip(values, axes)]
        if gtype.minimums:
            hit = gtype.check_minimums(coords, values)
            if hit:
                raise BadValues(hit[1], nums[hit[0]][0])
        return Grounding(gtype.name, tuple(coords), label, frame.name, tuple(values), span)


class _Extents:
    """A frame's per-axis extents for one image, computed once per parse (the resize rule runs once)."""

    def __init__(self, frame: Frame, size: ImageSize | None):
        self.frame, self.size = frame, size
        self.linear = type(frame).to_unit is Frame.to_unit and type(frame).check is Frame.check
        self._scale: dict[str, float] | None = None

    def get(self) -> dict[str, float]:
        if self._scale is None:
            self._scale = {"x": self.frame.extent("x", self.size), "y": self.frame.extent("y", self.size)}
        return self._scale


def get_parser(dialect: str = "groundkit", frame: str | None = None, types: Sequence[str] | None = None) -> TraceParser:
    """A parser for a dialect (default frame and every supported type unless given)."""
    return TraceParser(get_grammar(dialect, frame, types))


_PARSERS: dict[tuple[Any, ...], TraceParser] = {}


def _cached_parser(dialect: str, frame: str | None, types: tuple[str, ...] | None) -> TraceParser:
    """One parser per composed grammar (its lenient reader is built once, on first use)."""
    grammar = get_grammar(dialect, frame, types)
    parser = _PARSERS.get((dialect, frame, types))
    if parser is None or parser.composed is not grammar:
        parser = _PARSERS[(dialect, frame, types)] = TraceParser(grammar)
    return parser


def parse(
    text: str,
    dialect: str = "groundkit",
    frame: str | None = None,
    types: Sequence[str] | None = None,
    image_size: ImageSize | tuple[int, int] | None = None,
    lenient: bool = False,
) -> Trace:
    """Parse model output in ``dialect`` into a :class:`Trace` (canonical unit coordinates).

    Strict by default (bad text raises :class:`ParseError`); ``lenient=True`` recovers every
    well-formed grounding anywhere in the text and records what it skipped in ``trace.problems``.
    """
    if isinstance(image_size, tuple):
        image_size = ImageSize(*image_size)
    return _cached_parser(dialect, frame, tuple(types) if types is not None else None).parse(text, image_size, lenient)
