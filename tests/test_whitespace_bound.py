"""Structural whitespace is bounded in what the decoder may write; the parser reads any amount."""

from __future__ import annotations

import re

import pytest
import torch

from groundkit.backbones.tokenizers import sentencepiece_tokenizer
from groundkit.decoding import make_processor
from groundkit.decoding.check import check_completions, sample_rollouts
from groundkit.decoding.vocab import eos_token_ids, read_vocabulary
from groundkit.frames import ImageSize
from groundkit.registry import get_registry
from groundkit.text.grammar import (
    MAX_STRUCTURAL_WS,
    ComposedGrammar,
    bound_structural_whitespace,
    get_grammar,
)
from groundkit.text.parser import TraceParser

DIALECTS = ["groundkit", "treevgr", "qwen2vl", "qwen-json", "molmo"]
# the three structural gaps: before <think>, between </think> and <answer>, after </answer>
GAPS = re.compile(r"^(\s*)<think>.*</think>(\s*)<answer>.*</answer>(\s*)$", re.DOTALL)


@pytest.fixture(scope="module")
def tokenizer():
    return sentencepiece_tokenizer()


def whitespace_bias(tokenizer, strength: float) -> torch.Tensor:
    """A logit bias towards every token that is only whitespace (as its exact bytes)."""
    vocab = read_vocabulary(tokenizer, set())
    bias = torch.zeros(len(tokenizer))
    for i, raw in enumerate(vocab.tokens):
        if raw and raw.isspace():
            bias[i] = strength
    assert bool((bias > 0).any()), "the tokenizer has whitespace tokens"
    return bias


def rollouts(tokenizer, grammar, seed: int, rows: int = 16, steps: int = 48, **sampling):
    sizes = [ImageSize(640, 480)] * rows
    eos = eos_token_ids(tokenizer)
    processor = make_processor(tokenizer, grammar, sizes, max_new_tokens=steps)
    ids = sample_rollouts(processor, len(tokenizer), rows, steps, eos, bias=whitespace_bias(tokenizer, 30.0),
                          generator=torch.Generator().manual_seed(seed), **sampling)
    return check_completions(tokenizer, grammar, ids, sizes, eos)


def longest_gap(texts: list[str]) -> int:
    gaps = [len(g) for t in texts if (m := GAPS.match(t)) for g in m.groups()]
    assert gaps, "some rollout finished a whole trace"
    return max(gaps)


@pytest.mark.parametrize("dialect", DIALECTS)
def test_the_decoding_grammar_bounds_structural_whitespace_and_the_reading_grammar_does_not(dialect):
    grammar = get_grammar(dialect)
    ws = [line for line in grammar.text.splitlines() if line.startswith("_WS")]
    assert ws == [f"_WS: /[ \\t\\r\\n]{{1,{MAX_STRUCTURAL_WS}}}/"]
    assert [line for line in grammar.for_reading().text.splitlines() if line.startswith("_WS")] == ["_WS: /[ \\t\\r\\n]+/"]


def test_the_parser_reads_any_amount_of_structural_whitespace():
    text = " " * 40 + "\n<think>two</think>" + "\n" * 30 + "<answer>2</answer>" + " \n" * 20
    assert TraceParser(get_grammar("groundkit")).parse(text).answer == "2"


def test_other_whitespace_definitions_are_kept_as_written():
    skeleton = "_WS: /( |\\n)+/\nTEXT: /[^<]+/\n"
    assert bound_structural_whitespace(skeleton) == skeleton
    assert bound_structural_whitespace("_WS: /[ ]+/", 3) == "_WS: /[ ]{1,3}/"


@pytest.mark.parametrize("sampling", [dict(), dict(greedy=True)], ids=["sampled", "greedy"])
def test_rollouts_pushed_towards_whitespace_stay_within_the_bound(tokenizer, sampling):
    report = rollouts(tokenizer, get_grammar("groundkit"), seed=7, **sampling)
    assert not report.violations, report.violations[0]
    assert all(report.finished)
    assert longest_gap(report.texts) <= MAX_STRUCTURAL_WS


def test_without_the_bound_the_same_rollouts_spend_their_budget_on_whitespace(tokenizer):
    """The control: the bias really pushes whitespace (here through the unbounded reading grammar)."""
    bounded = get_grammar("groundkit")
    unbounded = ComposedGrammar(bounded.dialect, bounded.frame, bounded.types, bounded.for_reading().text)
    report = rollouts(tokenizer, unbounded, seed=7, steps=24)
    leading = [len(t) - len(t.lstrip()) for t in report.texts]
    assert max(leading) > MAX_STRUCTURAL_WS


@pytest.mark.parametrize("dialect", [d for d in DIALECTS if d != "groundkit"])
def test_every_builtin_dialect_bounds_its_rollouts(tokenizer, dialect):
    assert dialect in get_registry().dialects.names()
    report = rollouts(tokenizer, get_grammar(dialect), seed=11, rows=8, greedy=True)
    assert not report.violations, report.violations[0]
    assert longest_gap(report.texts) <= MAX_STRUCTURAL_WS
