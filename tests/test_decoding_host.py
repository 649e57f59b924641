"""The CPU step (per row on the host; number checks in Python integers or one numpy pass)
and the device step (padded tensor lists, no host reads) produce the same masks and the
same states, step by step."""

from __future__ import annotations

import pytest
import torch

from groundkit.backbones.tokenizers import qwen_tokenizer, sentencepiece_tokenizer
from groundkit.decoding import host as host_step
from groundkit.decoding import make_processor
from groundkit.decoding.check import grammar_bias
from groundkit.frames import ImageSize
from groundkit.text.grammar import get_grammar


@pytest.mark.parametrize(("dialect", "frame"), [("groundkit", None), ("qwen-json", "abs-resized"), ("molmo", None), ("qwen2vl", "unit")])
@pytest.mark.parametrize("make", [qwen_tokenizer, sentencepiece_tokenizer], ids=["qwen2", "sentencepiece"])
def test_host_and_tensor_steps_agree(make, dialect, frame, monkeypatch):
    monkeypatch.setattr(host_step, "SCALAR_NUMBER_ROWS", 2)  # steps with 1-2 rows in numbers: Python; more: numpy
    tok = make()
    grammar = get_grammar(dialect, frame)
    rows, steps = 12, 48
    sizes = [ImageSize(40 + 97 * i, 900 - 61 * i) for i in range(rows)]
    host = make_processor(tok, grammar, sizes, max_new_tokens=steps).new_constraint(rows, torch.device("cpu"))
    tensor = make_processor(tok, grammar, sizes, max_new_tokens=steps).new_constraint(rows, torch.device("cpu"))
    tensor.use_host = False
    g = torch.Generator().manual_seed(0)
    bias = grammar_bias(tok, grammar)
    vocab = len(tok) + 16
    for _ in range(steps):
        logits = torch.randn((rows, vocab), generator=g) * 3
        logits[:, : bias.shape[0]] += bias
        a, b = host.mask_(logits.clone()), tensor.mask_(logits.clone())
        assert torch.equal(torch.isneginf(a), torch.isneginf(b))
        token = torch.distributions.Categorical(logits=a).sample()
        host.advance(token)
        tensor.advance(token)
        assert torch.equal(host.state, tensor.state)
        assert torch.equal(host.I, tensor.I) and torch.equal(host.slots, tensor.slots)


def test_host_step_writes_through_non_contiguous_scores():
    """Scores that are a strided view (a slice of wider logits) are masked in place."""
    tok = qwen_tokenizer()
    grammar = get_grammar("groundkit", None)
    rows = 3
    host = make_processor(tok, grammar, None, max_new_tokens=32).new_constraint(rows, torch.device("cpu"))
    tensor = make_processor(tok, grammar, None, max_new_tokens=32).new_constraint(rows, torch.device("cpu"))
    tensor.use_host = False
    wide = torch.randn(rows, len(tok) + 8)
    view = wide[:, : len(tok)]
    assert not view.is_contiguous()
    expected = tensor.mask_(view.clone())
    out = host.mask_(view)
    assert out is view and torch.equal(torch.isneginf(wide[:, : len(tok)]), torch.isneginf(expected))
    assert torch.isneginf(view).any(-1).all()  # the start state allows only "<think>"-prefixes


def test_host_step_masks_bfloat16_scores_like_float32():
    """bfloat16 (no numpy view) takes the torch writes; the masks are the float32 ones."""
    tok = qwen_tokenizer()
    grammar = get_grammar("qwen-json", "abs-resized")
    rows, steps = 8, 40
    sizes = [ImageSize(300 + 50 * i, 200 + 30 * i) for i in range(rows)]
    a = make_processor(tok, grammar, sizes, max_new_tokens=steps).new_constraint(rows, torch.device("cpu"))
    b = make_processor(tok, grammar, sizes, max_new_tokens=steps).new_constraint(rows, torch.device("cpu"))
    g = torch.Generator().manual_seed(1)
    bias = grammar_bias(tok, grammar)
    for _ in range(steps):
        logits = torch.randn((rows, len(tok)), generator=g) * 3
        logits[:, : bias.shape[0]] += bias
        full, half = a.mask_(logits.clone()), b.mask_(logits.to(torch.bfloat16))
        assert torch.equal(torch.isneginf(full), torch.isneginf(half))
        token = torch.distributions.Categorical(logits=full).sample()
        a.advance(token)
        b.advance(token)
