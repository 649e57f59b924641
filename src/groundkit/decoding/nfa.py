"""Byte-level NFAs: Thompson fragments for grammar literals and terminal regexes.

Terminal patterns are parsed with Python's own regex parser (``re._parser``), so every
construct the grammar's terminals use means exactly what it means to the parser. Matching
is over UTF-8 bytes: a class that admits every non-ASCII character (``[^<]``) admits
exactly the well-formed UTF-8 sequences of RFC 3629 after its ASCII bytes, never a lone
continuation byte, a surrogate, an overlong form or a code point above U+10FFFF.
"""

from __future__ import annotations

import re
import re._constants as sre_c  # type: ignore[import-not-found]
import re._parser as sre_parse  # type: ignore[import-not-found]
from dataclasses import dataclass, field

from groundkit.errors import GrammarError

ALL_BYTES = (1 << 256) - 1
DIGITS = sum(1 << b for b in b"0123456789")
SPACES = sum(1 << b for b in b" \t\n\r\f\v")
WORD = sum(1 << b for b in b"0123456789_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") | sum(1 << b for b in range(128, 256))
MAX_UNROLL = 64
ASCII = (1 << 128) - 1
UTF8_SEQUENCES: tuple[tuple[tuple[int, int], ...], ...] = (
    ((0xC2, 0xDF), (0x80, 0xBF)),
    ((0xE0, 0xE0), (0xA0, 0xBF), (0x80, 0xBF)),  # no overlong 3-byte forms
    ((0xE1, 0xEC), (0x80, 0xBF), (0x80, 0xBF)),
    ((0xED, 0xED), (0x80, 0x9F), (0x80, 0xBF)),  # no UTF-16 surrogates D800..DFFF
    ((0xEE, 0xEF), (0x80, 0xBF), (0x80, 0xBF)),
    ((0xF0, 0xF0), (0x90, 0xBF), (0x80, 0xBF), (0x80, 0xBF)),  # no overlong 4-byte forms
    ((0xF1, 0xF3), (0x80, 0xBF), (0x80, 0xBF), (0x80, 0xBF)),
    ((0xF4, 0xF4), (0x80, 0x8F), (0x80, 0xBF), (0x80, 0xBF)),  # nothing above U+10FFFF
)
"""The well-formed UTF-8 sequences of one non-ASCII character (RFC 3629, section 4): byte
ranges per position."""


def _byte_range(lo: int, hi: int) -> int:
    return sum(1 << x for x in range(lo, hi + 1))


@dataclass(frozen=True)
class NumberTag:
    """Marks NFA states inside one written number: its ordinal ``slot`` within the grounding,
    its ``axis`` (0 = x, 1 = y), the slot it must exceed (``above``, -1 for none) and whether
    a later value must exceed it (``capped``: it must stay below the frame's bound)."""

    slot: int
    axis: int
    above: int
    capped: bool = False


@dataclass
class NFA:
    """States with epsilon edges and byte-set edges (byte sets are 256-bit ints)."""

    eps: list[list[int]] = field(default_factory=list)
    edges: list[list[tuple[int, int]]] = field(default_factory=list)
    tags: list[NumberTag | None] = field(default_factory=list)

    def state(self, tag: NumberTag | None = None) -> int:
        self.eps.append([])
        self.edges.append([])
        self.tags.append(tag)
        return len(self.eps) - 1

    def edge(self, a: int, byteset: int, b: int) -> None:
        self.edges[a].append((byteset, b))

    def epsilon(self, a: int, b: int) -> None:
        self.eps[a].append(b)

    # --- fragments: each returns (entry, exit) ---------------------------------------------
    def literal(self, data: bytes, tag: NumberTag | None = None) -> tuple[int, int]:
        start = cur = self.state()
        for b in data:
            nxt = self.state(tag)
            self.edge(cur, 1 << b, nxt)
            cur = nxt
        return start, cur

    def regex(self, pattern: str, tag: NumberTag | None = None) -> tuple[int, int]:
        try:
            parsed = sre_parse.parse(pattern)
        except re.error as exc:
            raise GrammarError(f"terminal pattern /{pattern}/ is not a valid regular expression: {exc}") from exc
        return _Builder(self, pattern, tag).seq(list(parsed))


def _charset(items: list[tuple[object, object]], pattern: str) -> int:
    negate, bits = False, 0
    for op, av in items:
        if op is sre_c.NEGATE:
            negate = True
        elif op is sre_c.LITERAL:
            bits |= _char_bits(av, pattern)  # type: ignore[arg-type]
        elif op is sre_c.RANGE:
            lo, hi = av  # type: ignore[misc]
            if hi > 127:
                raise GrammarError(f"terminal /{pattern}/: character ranges beyond ASCII are not supported by the decoder")
            bits |= sum(1 << b for b in range(lo, hi + 1))
        elif op is sre_c.CATEGORY:
            bits |= _category(av, pattern)
        else:
            raise GrammarError(f"terminal /{pattern}/: class item {op} is not supported by the decoder")
    if negate:
        if bits >> 128:
            raise GrammarError(f"terminal /{pattern}/: negated classes may only exclude ASCII characters")
        return ALL_BYTES & ~bits
    return bits


def _char_bits(code: int, pattern: str) -> int:
    if code > 127:
        raise GrammarError(f"terminal /{pattern}/: non-ASCII characters in classes are not supported; write them as literals")
    return 1 << code


def _category(cat: object, pattern: str) -> int:
    table = {
        sre_c.CATEGORY_DIGIT: DIGITS, sre_c.CATEGORY_NOT_DIGIT: ALL_BYTES & ~DIGITS,
        sre_c.CATEGORY_SPACE: SPACES, sre_c.CATEGORY_NOT_SPACE: ALL_BYTES & ~SPACES,
        sre_c.CATEGORY_WORD: WORD, sre_c.CATEGORY_NOT_WORD: ALL_BYTES & ~WORD & ((1 << 128) - 1),
    }
    if cat not in table:
        raise GrammarError(f"terminal /{pattern}/: category {cat} is not supported by the decoder")
    return table[cat]


class _Builder:
    def __init__(self, nfa: NFA, pattern: str, tag: NumberTag | None):
        self.nfa, self.pattern, self.tag = nfa, pattern, tag

    def fail(self, what: str) -> GrammarError:
        return GrammarError(f"terminal /{self.pattern}/: {what} is not supported by the decoder (it needs a regular pattern)")

    def seq(self, items: list[tuple[object, object]]) -> tuple[int, int]:
        start = cur = self.nfa.state()
        for op, av in items:
            a, b = self.item(op, av)
            self.nfa.epsilon(cur, a)
            cur = b
        return start, cur

    def byteset(self, bits: int) -> tuple[int, int]:
        """One character of a class: its ASCII bytes, and when it admits every non-ASCII
        character, exactly the well-formed UTF-8 sequences of RFC 3629 (no surrogates, no
        overlongs, nothing above U+10FFFF), so decoded text never gets U+FFFD."""
        nfa = self.nfa
        a, b = nfa.state(), nfa.state(self.tag)
        ascii_bits, high = bits & ASCII, bits >> 128
        if ascii_bits:
            nfa.edge(a, ascii_bits, b)
        if high:
            if high != (1 << 128) - 1:
                raise self.fail("a class admitting only some non-ASCII bytes")
            for seq in UTF8_SEQUENCES:
                cur = a
                for i, (lo, hi) in enumerate(seq):
                    nxt = b if i == len(seq) - 1 else nfa.state()
                    nfa.edge(cur, _byte_range(lo, hi), nxt)
                    cur = nxt
        return a, b

    def item(self, op: object, av: object) -> tuple[int, int]:
        nfa = self.nfa
        if op is sre_c.LITERAL:
            return nfa.literal(chr(av).encode("utf-8"), self.tag)  # type: ignore[arg-type]
        if op is sre_c.NOT_LITERAL:
            if av > 127:  # type: ignore[operator]
                raise self.fail("a negated non-ASCII literal")
            return self.byteset(ALL_BYTES & ~(1 << av))  # type: ignore[operator]
        if op is sre_c.ANY:
            return self.byteset(ALL_BYTES & ~(1 << 10))
        if op is sre_c.IN:
            return self.byteset(_charset(av, self.pattern))  # type: ignore[arg-type]
        if op is sre_c.SUBPATTERN:
            _group, add_flags, del_flags, sub = av  # type: ignore[misc]
            if add_flags or del_flags:
                raise self.fail("an inline flag")
            return self.seq(list(sub))
        if op is sre_c.BRANCH:
            start, end = nfa.state(), nfa.state()
            for alt in av[1]:  # type: ignore[index]
                a, b = self.seq(list(alt))
                nfa.epsilon(start, a)
                nfa.epsilon(b, end)
            return start, end
        if op in (sre_c.MAX_REPEAT, sre_c.MIN_REPEAT, getattr(sre_c, "POSSESSIVE_REPEAT", None)):
            lo, hi, sub = av  # type: ignore[misc]
            return self.repeat(lo, hi, list(sub))
        raise self.fail(f"construct {op}")

    def repeat(self, lo: int, hi: int, sub: list[tuple[object, object]]) -> tuple[int, int]:
        nfa = self.nfa
        unbounded = hi is sre_c.MAXREPEAT or hi >= 1 << 16
        if lo > MAX_UNROLL or (not unbounded and hi > MAX_UNROLL):
            raise self.fail(f"a repetition bound above {MAX_UNROLL}")
        start = cur = nfa.state()
        for _ in range(lo):
            a, b = self.seq(sub)
            nfa.epsilon(cur, a)
            cur = b
        end = nfa.state()
        nfa.epsilon(cur, end)
        if unbounded:
            a, b = self.seq(sub)
            nfa.epsilon(cur, a)
            nfa.epsilon(b, a)
            nfa.epsilon(b, end)
        else:
            for _ in range(hi - lo):
                a, b = self.seq(sub)
                nfa.epsilon(cur, a)
                nfa.epsilon(b, end)
                cur = b
        return start, end
