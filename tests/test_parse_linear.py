"""The linear-time parsing path (atomic terminals, skipping the valid reasoning run before an
error) gives exactly what Lark alone gives, on long inputs of every family."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import trace

import groundkit as gk
from groundkit.text.regex import loop_pattern

DIALECTS = ["groundkit", "treevgr", "qwen2vl", "qwen-json", "molmo"]
TAILS = ["", "</think>", "</think><answer>1", "</think><answer>1</answer>junk", "<", "[", "{", "<box", "<point", "</think><answer>1<"]


def outcome(parser: gk.TraceParser, text: str):
    try:
        t = parser.parse(text)
    except gk.ParseError as err:
        return ("error", err.offset, err.line, err.column, err.truncated, err.reason, tuple(err.expected))
    return ("ok", t, [(s.span, getattr(s, "raw", None)) for s in t.think])


def parsers(dialect: str) -> tuple[gk.TraceParser, gk.TraceParser]:
    grammar = gk.get_grammar(dialect)
    return gk.TraceParser(grammar), gk.TraceParser(grammar, fast=False)


def body(dialect: str, n: int = 40) -> str:
    """A long well-formed reasoning body: the dialect's example's body repeated."""
    example = gk.get_registry().dialect(dialect).example
    inner = example[len("<think>") : example.index("</think>")]
    return "\n".join([inner] * n)


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("tail", TAILS)
def test_long_valid_run_then_tail_agrees_with_lark(dialect, tail):
    fast, slow = parsers(dialect)
    text = "<think>" + body(dialect) + tail
    assert outcome(fast, text) == outcome(slow, text)


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("run", ["<" * 3000, "[" * 3000, "1" * 3000, "word " * 600, "{" * 3000, '<point x="1' * 300])
def test_pathological_runs_agree_with_lark(dialect, run):
    fast, slow = parsers(dialect)
    for text in ("<think>" + run, "<think>" + body(dialect) + run, "<think>" + body(dialect) + run + "</think><answer>1</answer>"):
        assert outcome(fast, text) == outcome(slow, text)


@pytest.mark.parametrize("dialect", DIALECTS)
def test_a_bad_grounding_deep_in_a_long_run_is_reported_where_lark_reports_it(dialect):
    fast, slow = parsers(dialect)
    good = body(dialect)
    broken = good[: len(good) // 2] + re.sub(r"[0-9]", "x", body(dialect, 1), count=1) + good[len(good) // 2 :]
    text = "<think>" + broken + "</think><answer>1</answer>"
    expected = outcome(slow, text)
    assert expected[0] == "error" and expected[1] > 1000
    assert outcome(fast, text) == expected


def test_the_loop_pattern_is_derived_for_every_builtin_dialect():
    for dialect in DIALECTS:
        m = loop_pattern(gk.get_grammar(dialect)).match("<think>" + body(dialect, 3) + "</thi")
        assert m.group("HEAD") == "<think>" and m.end() == len("<think>" + body(dialect, 3))


@pytest.mark.parametrize("dialect", DIALECTS)
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_long_random_traces_cut_anywhere_agree_with_lark(dialect, data):
    fast, slow = parsers(dialect)
    pieces = [gk.format_trace(data.draw(trace(dialect)), dialect) for _ in range(3)]
    inner = "".join(p[len("<think>") : p.index("</think>")] for p in pieces) * 20
    text = "<think>" + inner + pieces[-1][pieces[-1].index("</think>") :]
    cut = data.draw(st.integers(0, len(text)))
    noise = data.draw(st.sampled_from(["", "<", "[", "0", '"', "{", ",", "</think>"]))
    for candidate in (text, text[:cut], text[:cut] + noise + text[cut:]):
        assert outcome(fast, candidate) == outcome(slow, candidate), candidate[-80:]
