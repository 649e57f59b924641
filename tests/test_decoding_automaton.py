"""The token automaton against the Lark parser: same accept/reject on valid and mutated
traces (hypothesis), exact vocabulary bytes, the disk cache, and third-party types."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lark.exceptions import LarkError
from strategies import trace

import groundkit as gk
from groundkit.backbones.tokenizers import qwen_tokenizer, sentencepiece_tokenizer
from groundkit.decoding.automaton import build_byte_dfa
from groundkit.decoding.tables import DecodingWarning, cache_dir, get_tables, grammar_literals, load_tables
from groundkit.decoding.vocab import read_vocabulary
from groundkit.registry import get_registry
from groundkit.text.grammar import get_grammar

DIALECTS = get_registry().dialects.names()
FRAMES = {"groundkit": None, "molmo": None, "qwen-json": "rel-1000", "qwen2vl": None, "treevgr": None}


_DFAS: dict[str, object] = {}


def dfa_for(grammar):
    if grammar.text not in _DFAS:
        _DFAS[grammar.text] = build_byte_dfa(grammar)
    return _DFAS[grammar.text]


def lark_accepts(grammar, text: str) -> bool:
    try:
        grammar.lark.parse(text)
        return True
    except LarkError:
        return False


@st.composite
def mutated(draw, dialect: str):
    text = gk.format_trace(draw(trace(dialect, FRAMES[dialect])), dialect, FRAMES[dialect])
    for _ in range(draw(st.integers(0, 3))):
        if not text:
            break
        i = draw(st.integers(0, len(text) - 1))
        op = draw(st.sampled_from(["delete", "insert", "replace", "cut"]))
        char = draw(st.sampled_from(list('<>()[]{},". 0123456789x=|/:\nabp')))
        text = {"delete": text[:i] + text[i + 1:], "insert": text[:i] + char + text[i:],
                "replace": text[:i] + char + text[i + 1:], "cut": text[:i]}[op]
    return text


@pytest.mark.parametrize("dialect", DIALECTS)
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_automaton_agrees_with_the_lark_parser(dialect, data):
    grammar = get_grammar(dialect, FRAMES[dialect])
    dfa = dfa_for(grammar)
    text = data.draw(mutated(dialect))
    assert dfa.accepts(text.encode("utf-8")) == lark_accepts(grammar, text), text


@pytest.mark.parametrize("dialect", DIALECTS)
def test_examples_and_their_prefixes(dialect):
    grammar = get_grammar(dialect, FRAMES[dialect])
    dfa = build_byte_dfa(grammar)
    example = get_registry().dialect(dialect).example.encode()
    if not lark_accepts(grammar, example.decode()):
        pytest.skip("the dialect's example is written in another frame")
    assert dfa.accepts(example)
    for cut in range(len(example)):  # every proper prefix is alive (not the dead state) but not accepted
        state = dfa.run(example[:cut])
        assert state != dfa.dead and not dfa.accept[state]


@pytest.mark.parametrize("make", [qwen_tokenizer, sentencepiece_tokenizer], ids=["byte-level", "sentencepiece"])
def test_vocabulary_bytes_are_exact(make):
    tok = make()
    grammar = get_grammar("qwen2vl")
    vocab = read_vocabulary(tok, grammar_literals(grammar))
    for text in ["Hello wörld, 你好 <point>(12,3)</point>\n\ttabs", "<|box_start|>(1,2)<|box_end|> end", "  double  spaces  "]:
        ids = tok.encode(text, add_special_tokens=False)
        assert b"".join(vocab.tokens[i] for i in ids) == text.encode("utf-8")
    for i in vocab.eos_ids:
        assert vocab.tokens[i] is None  # EOS is handled by the automaton, never as text


def test_added_tokens_are_allowed_only_where_the_grammar_writes_them():
    tok = qwen_tokenizer()
    ids = {t: tok.convert_tokens_to_ids(t) for t in ("<|box_start|>", "<|vision_start|>", "<|im_start|>")}
    with_boxes = read_vocabulary(tok, grammar_literals(get_grammar("qwen2vl")))
    assert with_boxes.tokens[ids["<|box_start|>"]] == b"<|box_start|>"
    assert with_boxes.tokens[ids["<|vision_start|>"]] is None and with_boxes.tokens[ids["<|im_start|>"]] is None
    plain = read_vocabulary(tok, grammar_literals(get_grammar("groundkit")))
    assert plain.tokens[ids["<|box_start|>"]] is None


def test_tables_are_cached_on_disk_and_a_corrupt_file_is_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setenv("GROUNDKIT_CACHE_DIR", str(tmp_path))
    tok = sentencepiece_tokenizer()
    grammar = get_grammar("treevgr")
    vocab = read_vocabulary(tok, grammar_literals(grammar))
    cold = get_tables(grammar, vocab)
    files = list(cache_dir().glob("*.npz"))
    assert len(files) == 1
    warm = load_tables(files[0])
    assert warm is not None and sorted(warm.arrays) == sorted(cold.arrays)
    for name, array in cold.arrays.items():
        assert (warm.arrays[name] == array).all(), name
    files[0].write_bytes(b"not a table file")
    with pytest.warns(DecodingWarning, match="rebuilding"):
        rebuilt = get_tables(grammar, vocab)
    assert (rebuilt.arrays["dist"] == cold.arrays["dist"]).all()


def test_third_party_grounding_type_works_with_no_engine_change(fresh_registry):
    import torch
    from test_example_plugin import load_line_plugin

    from groundkit.decoding import make_processor
    from groundkit.decoding.check import check_completions, grammar_bias, sample_rollouts

    fresh_registry(("line", load_line_plugin()))
    grammar = get_grammar("groundkit", types=["point", "line"])
    dfa = build_byte_dfa(grammar)
    assert dfa.accepts(b"<think>a <line>[(1,2),(3,4)]</line></think><answer>x</answer>")
    tok = sentencepiece_tokenizer()
    sizes = [gk.ImageSize(640, 480)] * 24
    processor = make_processor(tok, grammar, sizes, max_new_tokens=72)
    from groundkit.decoding.vocab import eos_token_ids

    eos = eos_token_ids(tok)
    ids = sample_rollouts(processor, len(tok), 24, 72, eos, bias=grammar_bias(tok, grammar), generator=torch.Generator().manual_seed(0))
    report = check_completions(tok, grammar, ids, sizes, eos)
    assert not report.violations, report.violations[0]
    assert any("<line" in t for t in report.texts)


def test_an_invalid_terminal_regex_is_a_grammar_error():
    from groundkit.decoding.nfa import NFA
    from groundkit.errors import GrammarError

    with pytest.raises(GrammarError, match=r"/\(/ is not a valid regular expression"):
        NFA().regex("(")
