"""The llguidance / xgrammar decoding backends drive generate() of a tiny causal LM with the Qwen2 tokenizer."""

from __future__ import annotations

import pytest
from peers import need

import groundkit as gk

PEERS = ["llguidance", "xgrammar"]


@pytest.fixture(scope="module")
def lm():
    import torch
    import transformers

    tok = gk.qwen_tokenizer()  # the real Qwen2 BPE when ../shared has it, else a small byte-level BPE
    config = transformers.Qwen2Config(
        vocab_size=len(tok) + 271, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1,
        intermediate_size=32,
    )  # more logits than tokens, as real checkpoints have (151,936 for 151,665 Qwen2 tokens)
    torch.manual_seed(0)
    return tok, transformers.Qwen2ForCausalLM(config).eval()


class Steer:
    """Pushes row 0 towards a target text's tokens (where the grammar allows them): a complete trace."""

    def __init__(self, target_ids: list[int], prompt_len: int):
        self.target, self.prompt_len = target_ids, prompt_len

    def __call__(self, input_ids, scores):
        k = input_ids.shape[1] - self.prompt_len
        if k < len(self.target):
            scores[0, self.target[k]] += 1e4
        return scores


def generate(tok, model, backend: str, grammar: gk.ComposedGrammar, target: str, max_new_tokens: int = 48):
    proc = gk.get_registry().decoding_backend(backend).logits_processor(tok, grammar, max_new_tokens=max_new_tokens)
    enc = tok(["Count the mugs:", "Describe the picture please:"], return_tensors="pt", padding=True)
    steer = Steer(tok(target, add_special_tokens=False).input_ids + [tok.eos_token_id], enc.input_ids.shape[1])
    out = model.generate(
        **enc, logits_processor=[proc, steer], max_new_tokens=max_new_tokens, do_sample=True,
        pad_token_id=tok.eos_token_id, eos_token_id=tok.eos_token_id,
    )
    return tok.batch_decode(out[:, enc.input_ids.shape[1] :], skip_special_tokens=True)


@pytest.mark.parametrize("backend", PEERS)
def test_peer_backend_generates_text_that_parses(lm, backend):
    need(backend)
    tok, model = lm
    grammar = gk.get_grammar("groundkit", types=["point"])
    parser = gk.TraceParser(grammar)
    good = '<think>two <point label="mug">(212, 533)</point></think><answer>2</answer>'
    steered, free = generate(tok, model, backend, grammar, good)
    assert steered == good
    assert parser.is_valid_prefix(free), free  # a random row, cut by the budget, is a valid prefix
    # steering towards an out-of-frame value: the peer's mask diverts it, the text stays valid
    steered, _ = generate(tok, model, backend, grammar, good.replace("212", "1001"))
    assert "1001" not in steered and parser.is_valid_prefix(steered), steered


@pytest.mark.parametrize("backend", PEERS)
def test_peer_backend_reports_a_missing_package(backend, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == backend else real(name, *a))
    chosen = gk.get_registry().decoding_backend(backend)
    assert "not installed" in chosen.unavailable()
    from groundkit.decoding import grounded_logits_processor

    with pytest.raises(gk.GroundkitError, match="cannot run here"):
        grounded_logits_processor(object(), gk.get_grammar("groundkit"), backend=backend)


@pytest.mark.parametrize("backend", PEERS)
def test_peer_native_apply_equals_the_reference_unpacking(backend):
    """The benchmark times each peer's own apply kernel: it must mask exactly the bits that are 0."""
    import torch
    from groundkit_plugins.decoding_peers import LLGuidancePeer, XGrammarPeer, apply_bitmask

    need(backend)
    tok = gk.qwen_tokenizer()
    vocab = len(tok) + 40  # logits past the mask's words are never allowed
    peer = {"llguidance": LLGuidancePeer, "xgrammar": XGrammarPeer}[backend](tok, vocab)
    g = torch.Generator().manual_seed(0)
    bitmask = torch.randint(-(2**31), 2**31 - 1, (3, (vocab + 31) // 32), dtype=torch.int32, generator=g)
    scores = torch.randn(3, vocab, generator=g)
    expected = scores.clone()
    apply_bitmask(expected, bitmask)
    peer.apply(scores, bitmask)
    assert torch.equal(torch.isneginf(scores), torch.isneginf(expected))
    assert torch.equal(scores[~torch.isneginf(scores)], expected[~torch.isneginf(expected)])
