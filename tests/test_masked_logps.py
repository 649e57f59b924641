"""Mask-consistent log-probs without a (B, T, V) mask: the sparse replay rebuilds exactly the
generation masks, and log-probs, entropies and gradients equal today's dense implementation
(:func:`dense_masked_logps`, the reference) on real constrained rollouts and random cases.

The reference runs in float64: in float32 it is itself up to ~6e-5 off in entropy at
Qwen2's vocabulary (a float32 sum over 151,936 terms), while the sparse path is within ~1e-5.
"""

from __future__ import annotations

import functools

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from groundkit.backbones.tokenizers import find_qwen2_tokenizer_dir, qwen_tokenizer, sentencepiece_tokenizer
from groundkit.decoding import make_processor
from groundkit.decoding.check import grammar_bias, sample_rollouts
from groundkit.decoding.replay import replay_states
from groundkit.decoding.vocab import eos_token_ids
from groundkit.frames import ImageSize
from groundkit.text.grammar import get_grammar
from groundkit.training.constrained import dense_masked_logps, masked_logps
from groundkit.training.masked_logps import FALLBACK_MASS, sparse_masked_logps

CASES = [("groundkit", None), ("qwen-json", "abs-resized"), ("molmo", None), ("qwen2vl", "unit"), ("treevgr", "percent-100")]
SIZES = [ImageSize(640, 480), ImageSize(300, 900), ImageSize(100, 50)]


@pytest.fixture(scope="module")
def qwen():
    if find_qwen2_tokenizer_dir() is None:
        pytest.skip("../shared/tokenizers/qwen2 is absent: the real Qwen2 vocabulary is needed for this test")
    return qwen_tokenizer()


@pytest.fixture(scope="module")
def sentencepiece():
    return small_vocab()


@functools.cache
def small_vocab():
    return sentencepiece_tokenizer()


def rollouts(tok, dialect, frame, steps, seed, budget=None, extra=64):
    """Real constrained completions from random logits, the completion mask (cut after EOS)
    and a processor for them; ``budget`` below ``steps`` exercises budget-aware closing."""
    grammar = get_grammar(dialect, frame)
    eos = eos_token_ids(tok)
    vocab = len(tok) + extra
    proc = make_processor(tok, grammar, SIZES, max_new_tokens=budget or steps)
    ids = sample_rollouts(proc, vocab, len(SIZES), steps, eos, bias=grammar_bias(tok, grammar),
                          generator=torch.Generator().manual_seed(seed))
    mask = torch.ones_like(ids)
    for row, line in enumerate(ids.tolist()):
        ends = [i for i, t in enumerate(line) if t in eos]
        if ends:
            mask[row, ends[0] + 1:] = 0
    return grammar, ids, mask, vocab, lambda: make_processor(tok, grammar, SIZES, max_new_tokens=budget or steps)


def reference(logits, ids, mask, processor, temperature):
    """Today's implementation in float64, with its gradients."""
    x = logits.detach().double().requires_grad_()
    logps, entropy, violations = dense_masked_logps(x / temperature, ids, mask, processor, True)
    return x, logps, entropy, violations


def compare(logits, ids, mask, new_processor, temperature=0.7, weights_seed=0):
    x_ref, l_ref, e_ref, v_ref = reference(logits, ids, mask, new_processor(), temperature)
    x = logits.detach().clone().requires_grad_()
    logps, entropy, violations = masked_logps(x, ids, mask, new_processor(), True, temperature=temperature)
    assert violations == v_ref
    torch.testing.assert_close(logps.double(), l_ref, atol=1e-5, rtol=0)
    torch.testing.assert_close(entropy.double(), e_ref, atol=1e-5, rtol=0)
    g = torch.Generator().manual_seed(weights_seed)
    w1, w2 = torch.randn(ids.shape, generator=g), torch.randn(ids.shape, generator=g)
    ((l_ref * w1).sum() + (e_ref * w2).sum()).backward()
    ((logps * w1).sum() + (entropy * w2).sum()).backward()
    assert torch.isfinite(x.grad).all()
    torch.testing.assert_close(x.grad.double(), x_ref.grad, atol=1e-5, rtol=1e-5)  # float32 rounding of |grad| up to ~10
    return violations


@pytest.mark.parametrize(("dialect", "frame"), CASES)
def test_sparse_masks_equal_the_generation_masks_qwen2(qwen, dialect, frame):
    grammar, ids, mask, vocab, proc = rollouts(qwen, dialect, frame, steps=40, seed=len(dialect), budget=36)
    dense = torch.isneginf(proc().replay_mask(torch.zeros(ids.shape + (vocab,)), ids, mask))
    replay = replay_states(proc(), ids, mask)
    n = ids.numel()
    sparse = replay.mask(torch.arange(n), vocab).mask_(torch.zeros(n, vocab))
    assert torch.equal(torch.isneginf(sparse), dense.reshape(n, vocab))
    allows = replay.mask(torch.arange(n), vocab).allows(torch.arange(n) * 7919 % vocab)
    assert torch.equal(allows, ~dense.reshape(n, vocab)[torch.arange(n), torch.arange(n) * 7919 % vocab])


@pytest.mark.parametrize(("dialect", "frame"), CASES[:3])
def test_logps_entropies_gradients_equal_the_reference_on_qwen2_rollouts(qwen, dialect, frame):
    grammar, ids, mask, vocab, proc = rollouts(qwen, dialect, frame, steps=24, seed=7, budget=22)
    logits = torch.randn(ids.shape + (vocab,), generator=torch.Generator().manual_seed(1)) * 3
    compare(logits, ids, mask, proc)


@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 10_000), scale=st.floats(0.1, 12.0), case=st.sampled_from(CASES),
       temperature=st.sampled_from([0.5, 1.0, 1.3]), random_targets=st.booleans())
def test_random_cases_equal_the_reference(seed, scale, case, temperature, random_targets):
    """Random logits (narrow and wide states), random target ids (violations: a token the mask
    forbids keeps its unmasked log-prob), temperature, and EOS-cut rows."""
    grammar, ids, mask, vocab, proc = rollouts(small_vocab(), *case, steps=20, seed=seed, extra=5)
    g = torch.Generator().manual_seed(seed)
    if random_targets:
        ids = torch.where(torch.rand(ids.shape, generator=g) < 0.3, torch.randint(0, vocab, ids.shape, generator=g), ids)
    logits = torch.randn(ids.shape + (vocab,), generator=g) * scale
    violations = compare(logits, ids, mask, proc, temperature, seed)
    assert violations > 0 or not random_targets


def test_wide_positions_whose_forbidden_tokens_hold_most_mass_are_recomputed_exactly(sentencepiece):
    """The corrected normaliser would lose digits there: those positions take the exact path."""
    grammar, ids, mask, vocab, proc = rollouts(sentencepiece, "groundkit", None, steps=20, seed=3, extra=5)
    forbidden = torch.isneginf(proc().replay_mask(torch.zeros(ids.shape + (vocab,)), ids, mask))
    replay = replay_states(proc(), ids, mask)
    wide = ~replay.mask(torch.arange(ids.numel()), vocab).narrow.reshape(ids.shape)
    assert wide.any(), "the rollouts should pass through free text"
    logits = torch.randn(ids.shape + (vocab,), generator=torch.Generator().manual_seed(0))
    logits = logits + 12.0 * (forbidden & wide[..., None])  # the forbidden tokens hold almost all the mass
    p_forbidden = (torch.softmax(logits, -1) * forbidden).sum(-1)
    assert (p_forbidden[wide & mask.bool()] > FALLBACK_MASS).all()
    compare(logits, ids, mask, proc, temperature=1.0)


def test_logits_wider_than_the_prompt_window_get_gradients_only_in_the_window(sentencepiece):
    """As the trainer passes them: (B, T + 1, V) logits, the last position predicts nothing."""
    grammar, ids, mask, vocab, proc = rollouts(sentencepiece, "molmo", None, steps=12, seed=5, extra=5)
    logits = torch.randn((ids.shape[0], ids.shape[1] + 3, vocab), requires_grad=True)
    out = sparse_masked_logps(logits, ids, mask, replay_states(proc(), ids, mask), True, 0.8, offset=2)
    window = logits[:, 2:-1].detach().double().requires_grad_()
    ref, _, _ = dense_masked_logps(window / 0.8, ids, mask, proc(), False)
    torch.testing.assert_close(out.logps.double(), ref, atol=1e-5, rtol=0)
    out.logps.sum().backward()  # the entropy carries no gradient: the backward's short branch
    ref.sum().backward()
    assert (logits.grad[:, :2] == 0).all() and (logits.grad[:, -1] == 0).all()
    torch.testing.assert_close(logits.grad[:, 2:-1].double(), window.grad, atol=1e-5, rtol=1e-5)


def test_bfloat16_logits_give_float32_outputs_and_bfloat16_gradients(sentencepiece):
    grammar, ids, mask, vocab, proc = rollouts(sentencepiece, "groundkit", None, steps=10, seed=2, extra=5)
    logits = (torch.randn(ids.shape + (vocab,)) * 2).bfloat16().requires_grad_()
    logps, entropy, _ = masked_logps(logits, ids, mask, proc(), True)
    ref, ref_entropy, _ = dense_masked_logps(logits.detach().double(), ids, mask, proc(), True)
    assert logps.dtype == torch.float32
    torch.testing.assert_close(logps.double(), ref, atol=1e-5, rtol=0)
    torch.testing.assert_close(entropy.double(), ref_entropy, atol=1e-5, rtol=0)
    (logps.sum() + entropy.sum()).backward()
    assert logits.grad.dtype == torch.bfloat16 and torch.isfinite(logits.grad.float()).all()


def test_a_backend_with_only_replay_mask_gets_the_dense_path(sentencepiece):
    grammar, ids, mask, vocab, proc = rollouts(sentencepiece, "groundkit", None, steps=10, seed=4, extra=5)

    class DenseOnly:  # a third-party backend: replay_mask, no tables
        def __init__(self, inner):
            self.replay_mask = inner.replay_mask

    logits = torch.randn(ids.shape + (vocab,))
    dense = masked_logps(logits, ids, mask, DenseOnly(proc()), True, temperature=0.9)
    sparse = masked_logps(logits, ids, mask, proc(), True, temperature=0.9)
    torch.testing.assert_close(dense[0], sparse[0], atol=1e-5, rtol=0)
    torch.testing.assert_close(dense[1], sparse[1], atol=1e-5, rtol=0)


def test_replay_scan_and_sparse_masks_read_nothing_back_on_a_device(sentencepiece):
    """On ``meta`` any host read raises (see test_decoding_no_host_reads): the scan and the
    sparse masks are pure tensor operations, as on a GPU."""
    meta = torch.device("meta")
    grammar = get_grammar("qwen-json", "abs-resized")
    proc = make_processor(sentencepiece, grammar, SIZES, max_new_tokens=8)
    ids = torch.zeros((3, 8), dtype=torch.long, device=meta)
    replay = replay_states(proc, ids, torch.ones((3, 8), device=meta))
    mask = replay.mask(torch.arange(24, device=meta), len(sentencepiece) + 8)
    scores = mask.mask_(torch.empty((24, len(sentencepiece) + 8), device=meta))
    cols, counted = mask.columns()
    assert scores.device == meta and cols.shape == counted.shape and mask.allows(ids.reshape(-1)).shape == (24,)


def tiny_lm(kind: str, vocab: int):
    """A random-initialised causal LM from config, with TRL's fused LM head (as GRPOTrainer adds it)."""
    from transformers import Gemma2Config, Gemma2ForCausalLM, Qwen2Config, Qwen2ForCausalLM
    from trl.trainer.utils import add_fused_lm_head

    torch.manual_seed(0)
    common = dict(vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                  num_key_value_heads=1, head_dim=16)
    if kind == "gemma2":  # final-logit softcapping, tied embeddings
        model = Gemma2ForCausalLM(Gemma2Config(**common, final_logit_softcapping=5.0))
    else:
        model = Qwen2ForCausalLM(Qwen2Config(**common, tie_word_embeddings=False))
    with torch.no_grad():
        model.get_output_embeddings().weight.mul_(40.0)  # peaked distributions: some mass on forbidden tokens
    add_fused_lm_head(model, temperature=0.7, outputs=("log_probs", "entropy"))
    return model


@pytest.mark.parametrize("kind", ["qwen2", "gemma2"])
def test_trl_fused_lm_head_path_equals_the_logits_path_and_the_reference(sentencepiece, kind):
    """Through TRL's fused LM head (no (B, T, V) logits): the same log-probs, entropies and
    parameter gradients as from the model's logits, and as the dense reference."""
    from groundkit.training.constrained import MaskReplayingModel

    grammar, ids, mask, vocab, proc = rollouts(sentencepiece, "groundkit", None, steps=14, seed=11, extra=5)
    model = tiny_lm(kind, vocab)
    prompt = torch.randint(0, vocab, (ids.shape[0], 4), generator=torch.Generator().manual_seed(2))
    input_ids = torch.cat([prompt, ids], 1)
    attention = torch.cat([torch.ones_like(prompt), mask], 1)
    labels = input_ids.masked_fill(attention == 0, -100)
    labels[:, :prompt.shape[1]] = -100
    k = ids.shape[1]
    results = {}
    for fused in (True, False):
        model.zero_grad()
        stand_in = MaskReplayingModel(model, lambda sizes: proc(), SIZES, k, 0.7, fused=fused)
        out = stand_in(input_ids=input_ids, attention_mask=attention, labels=labels, fused_lm_head=True)
        logps, entropy = out.log_probs[:, -k:], out.entropy[:, -k:]
        (logps * mask).sum().add((entropy * mask).sum() * 0.5).backward()
        results[fused] = (logps.detach() * mask, entropy.detach() * mask,
                          {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
    for a, b in zip(results[True][:2], results[False][:2]):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    assert results[True][2].keys() == results[False][2].keys()
    for name, grad in results[True][2].items():
        torch.testing.assert_close(grad, results[False][2][name], atol=1e-4, rtol=1e-4, msg=name)
    with torch.no_grad():
        logits = model(input_ids=input_ids, attention_mask=attention).logits[:, -k - 1:-1].double()
    ref, ref_entropy, _ = dense_masked_logps(logits / 0.7, ids, mask, proc(), True)
    plain = torch.log_softmax(logits / 0.7, -1).gather(-1, ids[..., None]).squeeze(-1)
    assert ((plain - ref).abs() * mask > 1e-2).any(), "the masks should move the log-probs"
    torch.testing.assert_close(results[True][0].double(), ref * mask, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(results[True][1].double(), ref_entropy * mask, atol=1e-5, rtol=1e-5)
