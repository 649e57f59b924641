"""The regex fast path derived from the grammar agrees with Lark on every text."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import trace

import groundkit as gk
from groundkit.text.regex import RecursiveGrammarError, grammar_pattern

DIALECTS = ["groundkit", "treevgr", "qwen2vl", "qwen-json", "molmo"]
NOISE = st.sampled_from(['<', '>', '"', ",", " ", "0", "9", ".", "(", ")", "[", "]", "{", "}", "x", "\n", "<|box_end|>", "</think>"])


def outcome(parser: gk.TraceParser, text: str):
    try:
        t = parser.parse(text)
    except gk.ParseError as err:
        return ("error", err.offset, err.truncated, err.reason)
    spans = [(s.span, getattr(s, "raw", None), getattr(s, "label", None)) for s in t.think]
    return ("ok", t, spans)


@pytest.mark.parametrize("dialect", DIALECTS)
@settings(max_examples=80, deadline=None)
@given(data=st.data())
def test_fast_path_and_lark_agree_on_valid_and_mutated_text(dialect, data):
    grammar = gk.get_grammar(dialect)
    fast, slow = gk.TraceParser(grammar), gk.TraceParser(grammar, fast=False)
    text = gk.format_trace(data.draw(trace(dialect)), dialect)
    assert outcome(fast, text) == outcome(slow, text)
    for _ in range(3):
        pos = data.draw(st.integers(0, len(text)))
        mutated = text[:pos] + data.draw(NOISE) + text[pos + data.draw(st.integers(0, 2)):]
        assert outcome(fast, mutated) == outcome(slow, mutated), mutated


def test_the_fast_path_is_used_for_valid_text(monkeypatch):
    parser = gk.get_parser("groundkit")
    monkeypatch.setattr(parser, "lark", None)  # Lark would crash if it were called
    assert parser.parse(gk.get_registry().dialect("groundkit").example).groundings


def test_a_recursive_plugin_rule_falls_back_to_lark(fresh_registry):
    class Nested(gk.GroundingType):
        name = "nested"

        def __init__(self):
            rule = 'nested: "<n>(" NUM _SEP NUM ")" nested_more "</n>"\nnested_more: ("<n>" nested_more "</n>")?'
            super().__init__({"groundkit": gk.Syntax(rule, lambda label, v: f"<n>({v[0]}, {v[1]})</n>", writes_label=False)})

    import types

    fresh_registry(("nested", types.SimpleNamespace(register_grounding_types=gk.hookimpl(lambda register: register(Nested())))))
    grammar = gk.get_grammar("groundkit", types=["nested"])
    with pytest.raises(RecursiveGrammarError):
        grammar_pattern(grammar)
    t = gk.parse("<think><n>(1, 2)<n></n></n></think><answer>1</answer>", types=["nested"])
    assert t.groundings[0].coords == (0.001, 0.002)
