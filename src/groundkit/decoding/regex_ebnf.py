"""A terminal's Python regex rewritten as an EBNF (GBNF / xgrammar) expression.

Parses the regex with Python's own regex parser and re-emits it, so only constructs that
describe a regular language are accepted (no anchors, look-arounds or back-references).
``\\w`` / ``\\d`` / ``\\s`` are read as their ASCII classes.
"""

from __future__ import annotations

import json

try:  # Python >= 3.11
    import re._constants as sre
    import re._parser as sre_parse
except ImportError:  # pragma: no cover - Python 3.10
    import sre_constants as sre  # type: ignore[no-redef]
    import sre_parse  # type: ignore[no-redef]

from groundkit.errors import GrammarError

_CATEGORIES = {
    sre.CATEGORY_DIGIT: (False, "0-9"),
    sre.CATEGORY_NOT_DIGIT: (True, "0-9"),
    sre.CATEGORY_SPACE: (False, " \\t\\n\\r\\f\\v"),
    sre.CATEGORY_NOT_SPACE: (True, " \\t\\n\\r\\f\\v"),
    sre.CATEGORY_WORD: (False, "a-zA-Z0-9_"),
    sre.CATEGORY_NOT_WORD: (True, "a-zA-Z0-9_"),
}
_CLASS_ESCAPES = {"\\": "\\\\", "]": "\\]", "[": "\\[", "-": "\\-", "^": "\\^", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def ebnf_string(text: str) -> str:
    """A double-quoted EBNF string literal."""
    return json.dumps(text, ensure_ascii=False)


def _class_char(code: int) -> str:
    ch = chr(code)
    if ch in _CLASS_ESCAPES:
        return _CLASS_ESCAPES[ch]
    if code < 0x20 or code == 0x7F:
        return f"\\x{code:02x}"
    return ch


def _char_class(items: list) -> str:
    negate = False
    parts: list[str] = []
    for op, av in items:
        if op is sre.NEGATE:
            negate = True
        elif op is sre.LITERAL:
            parts.append(_class_char(av))
        elif op is sre.RANGE:
            parts.append(_class_char(av[0]) + "-" + _class_char(av[1]))
        elif op is sre.CATEGORY and av in _CATEGORIES:
            neg, body = _CATEGORIES[av]
            if neg and (len(items) > 1):
                raise GrammarError("a negated class escape (\\D, \\S, \\W) inside [...] has no EBNF form")
            negate = negate or neg
            parts.append(body)
        else:
            raise GrammarError(f"character-class item {op} has no EBNF form")
    return "[" + ("^" if negate else "") + "".join(parts) + "]"


class RegexToEbnf:
    """Converts one regex; ``dotall`` says whether ``.`` matches a newline."""

    def __init__(self, dotall: bool = False):
        self.dotall = dotall

    def convert(self, pattern: str) -> str:
        try:
            parsed = sre_parse.parse(pattern)
        except Exception as exc:  # re.error
            raise GrammarError(f"cannot read terminal regex {pattern!r}: {exc}") from exc
        flags = parsed.state.flags
        return self._seq(list(parsed), self.dotall or bool(flags & sre.SRE_FLAG_DOTALL))[0]

    def _seq(self, items: list, dotall: bool) -> tuple[str, bool]:
        """EBNF of a sequence and whether it is atomic (safe to quantify without parentheses)."""
        out: list[tuple[str, bool]] = []
        literal = ""
        for op, av in items:
            if op is sre.LITERAL:
                literal += chr(av)
                continue
            if literal:
                out.append((ebnf_string(literal), len(literal) == 1))
                literal = ""
            out.append(self._item(op, av, dotall))
        if literal:
            out.append((ebnf_string(literal), len(literal) == 1))
        if not out:
            return '""', True
        if len(out) == 1:
            return out[0]
        return "(" + " ".join(text for text, _ in out) + ")", True

    def _item(self, op, av, dotall: bool) -> tuple[str, bool]:  # noqa: ANN001 - sre opcodes are untyped
        if op is sre.NOT_LITERAL:
            return "[^" + _class_char(av) + "]", True
        if op is sre.ANY:
            return ("[\\x00-\\U0010ffff]" if dotall else "[^\\n]"), True
        if op is sre.IN:
            return _char_class(list(av)), True
        if op is sre.BRANCH:
            return "(" + " | ".join(self._seq(list(b), dotall)[0] for b in av[1]) + ")", True
        if op is sre.SUBPATTERN:
            _group, add, _del, sub = av
            return self._seq(list(sub), dotall or bool(add & sre.SRE_FLAG_DOTALL))
        if op in _REPEATS:
            lo, hi, sub = av
            inner, atomic = self._seq(list(sub), dotall)
            inner = inner if atomic else f"({inner})"
            if (lo, hi) == (0, 1):
                return inner + "?", False
            if hi is sre.MAXREPEAT:
                return inner + ("*" if lo == 0 else "+" if lo == 1 else f"{{{lo},}}"), False
            return inner + (f"{{{lo}}}" if lo == hi else f"{{{lo},{hi}}}"), False
        raise GrammarError(f"regex construct {op} has no EBNF form (anchors, look-arounds and back-references cannot be exported)")


_REPEATS = tuple(getattr(sre, n) for n in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT") if hasattr(sre, n))
