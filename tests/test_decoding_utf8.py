"""Strict UTF-8: every text-like position of every dialect (free text, labels, answers,
refs, ``alt``) admits exactly the byte sequences Python's own decoder accepts (RFC 3629:
no lone continuation bytes, no surrogates, no overlong forms, nothing above U+10FFFF)."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lark.exceptions import LarkError

from groundkit.decoding.automaton import build_byte_dfa
from groundkit.registry import get_registry
from groundkit.text.grammar import get_grammar

DIALECTS = get_registry().dialects.names()
FRAMES = {"groundkit": None, "molmo": None, "qwen-json": "rel-1000", "qwen2vl": None, "treevgr": None}
# one byte of every class the RFC 3629 table distinguishes, at its edges
LEADS = [0x80, 0xBF, 0xC0, 0xC1, 0xC2, 0xDF, 0xE0, 0xE1, 0xEC, 0xED, 0xEE, 0xEF, 0xF0, 0xF1, 0xF3, 0xF4, 0xF5, 0xF8, 0xFF]
TAILS = [0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xF5]
ASCII = ord("a")


def decodes(data: bytes) -> bool:
    try:
        data.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def lark_accepts(grammar, text: str) -> bool:
    try:
        grammar.lark.parse(text)
        return True
    except LarkError:
        return False


_CONTEXTS: dict[str, tuple[object, object, list[tuple[int, bytes]]]] = {}


def text_positions(dialect: str):
    """(grammar, dfa, [(state after the prefix, the example's rest)]) for every distinct
    automaton state where the example has a letter or digit and another character may be written."""
    if dialect not in _CONTEXTS:
        grammar = get_grammar(dialect, FRAMES[dialect])
        dfa = build_byte_dfa(grammar)
        example = get_registry().dialect(dialect).example
        seen: dict[int, bytes] = {}
        for i in range(1, len(example)):
            if not example[i - 1].isalnum() or not lark_accepts(grammar, example[:i] + "é" + example[i:]):
                continue
            state = dfa.run(example[:i].encode())
            seen.setdefault(state, example[i:].encode())
        _CONTEXTS[dialect] = (grammar, dfa, sorted(seen.items()))
    return _CONTEXTS[dialect]


@pytest.mark.parametrize("dialect", DIALECTS)
def test_every_text_position_admits_exactly_well_formed_utf8(dialect):
    _grammar, dfa, positions = text_positions(dialect)
    assert len(positions) >= 2, "the example should have free text and at least one label or answer"
    sequences = [bytes([ASCII])] + [bytes([lead, *tail]) for lead in LEADS for n in range(4)
                                    for tail in itertools.product(TAILS + [ASCII], repeat=n)]
    for state, rest in positions:
        finishes: dict[int, bool] = {}
        for seq in sequences:
            after = dfa.run(seq, state)
            if after not in finishes:
                finishes[after] = bool(dfa.accept[dfa.run(rest, after)])
            assert finishes[after] == decodes(seq), (seq.hex(" "), rest[:20])


@pytest.mark.parametrize("dialect", DIALECTS)
@settings(max_examples=150, deadline=None)
@given(data=st.binary(min_size=1, max_size=8) | st.lists(st.sampled_from(LEADS + TAILS + [ASCII]), min_size=1, max_size=8).map(bytes))
def test_arbitrary_bytes_in_text_are_accepted_exactly_when_the_parser_accepts_their_decoding(dialect, data):
    grammar, dfa, positions = text_positions(dialect)
    for state, rest in positions:
        prefix_state = dfa.run(data, state)
        accepted = bool(dfa.accept[dfa.run(rest, prefix_state)])
        if not decodes(data):
            assert not accepted, data.hex(" ")
            continue
        # the same position in text: the parser is the reference for well-formed input
        example = get_registry().dialect(dialect).example.encode()
        head = example[: len(example) - len(rest)]
        assert accepted == lark_accepts(grammar, (head + data + rest).decode()), data
