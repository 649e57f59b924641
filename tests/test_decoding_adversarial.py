"""Adversarial generators in the guarantee: a byte-level BPE trained here without
pre-tokenisation (so it has multi-digit tokens, tokens spanning tags and numbers, and tokens
that end inside a UTF-8 character), logits pushed towards those trouble tokens and EOS, and
every produced byte string checked as strict UTF-8 next to the grammar, bounds and budget."""

from __future__ import annotations

import codecs
import random
import re

import pytest
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from groundkit.decoding import make_processor
from groundkit.decoding.check import check_completions, sample_rollouts
from groundkit.decoding.tables import grammar_literals
from groundkit.decoding.vocab import read_vocabulary
from groundkit.frames import ImageSize
from groundkit.registry import get_registry
from groundkit.text.grammar import get_grammar

EOS = "<|endoftext|>"
WORDS = ["mug", "plate", "café", "naïve", "你好", "東京", "🙂", "ñandú", "Ω", "über", "x", "the"]
SAMPLING = [dict(), dict(temperature=1.5, top_k=8, warpers_first=True), dict(greedy=True), dict(top_p=0.8)]
FRAMES = [None, "abs-original", "unit"]
ROWS, STEPS = 24, 56


def corpus(seed: int = 0) -> list[str]:
    """Every dialect's example with its numbers and words redrawn, plus non-ASCII text."""
    rng = random.Random(seed)
    out = []
    for name in get_registry().dialects.names():
        example = get_registry().dialect(name).example
        for _ in range(120):
            text = re.sub(r"\d+", lambda _m: str(rng.choice([0, 7, 12, 99, 100, 250, 999, 1000, rng.randint(0, 1500)])),
                          example)
            text = re.sub(r"\b(mug|plate)\b", lambda _m: rng.choice(WORDS), text)
            out.append(text)
    out += [" ".join(rng.choice(WORDS) for _ in range(12)) for _ in range(200)]
    return out


@pytest.fixture(scope="module")
def bpe() -> PreTrainedTokenizerFast:
    tk = Tokenizer(models.BPE())
    # byte-level alphabet, but no splitting: merges cross spaces, tags and numbers
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tk.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=900, special_tokens=[EOS], initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tk.train_from_iterator(corpus(), trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tk, eos_token=EOS, pad_token=EOS)


def trouble_bias(tokens: list[bytes | None], eos: list[int], strength: float = 6.0) -> torch.Tensor:
    """Logit bias towards tokens that stress the decoder: multi-digit, tag+number, closers,
    partial UTF-8, and EOS."""
    bias = torch.zeros(len(tokens))
    for i, data in enumerate(tokens):
        if data is None:
            continue
        digits = sum(c in b"0123456789" for c in data)
        incomplete = _partial_utf8(data)
        spans = digits and any(c in data for c in b"<>[](){},\"=")
        bias[i] = strength * (bool(digits > 1) + bool(spans) + incomplete + (b"<" in data) + any(c in data for c in b">])}"))
    bias[eos] = strength
    return bias


def _partial_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
        return False
    except UnicodeDecodeError:
        return True


def test_the_trained_vocabulary_has_the_trouble_tokens(bpe):
    vocab = read_vocabulary(bpe, set())
    pieces = [t for t in vocab.tokens if t]
    assert any(re.fullmatch(rb"\d{2,}", t) for t in pieces), "multi-digit tokens"
    assert any(re.search(rb"[<\[(,]\s*\d|\d[>\])},]", t) for t in pieces), "tokens spanning a tag and a number"
    assert any(_partial_utf8(t) for t in pieces), "tokens ending inside a UTF-8 character"


@pytest.mark.parametrize("dialect", get_registry().dialects.names())
def test_adversarial_rollouts_stay_valid_and_strict_utf8(bpe, dialect):
    eos = [bpe.convert_tokens_to_ids(EOS)]
    checked = finished = 0
    for k, frame in enumerate(FRAMES):
        if dialect == "molmo" and frame == "abs-original":
            continue  # molmo writes percentages
        grammar = get_grammar(dialect, frame)
        vocab = read_vocabulary(bpe, grammar_literals(grammar), eos)
        bias = trouble_bias(vocab.tokens, eos)
        for j, sampling in enumerate(SAMPLING):
            seed = 97 * k + j
            g = torch.Generator().manual_seed(seed)
            sizes = [ImageSize(int(w), int(h)) for w, h in torch.randint(1, 2000, (ROWS, 2), generator=g).tolist()]
            proc = make_processor(bpe, grammar, sizes, max_new_tokens=STEPS, eos_token_ids=eos)
            ids = sample_rollouts(proc, len(bpe) + 16, ROWS, STEPS, eos, bias=bias, generator=g, **sampling)
            report = check_completions(bpe, grammar, ids, sizes, eos)
            assert not report.violations, report.violations[0]
            for row in ids.tolist():
                cut = row.index(eos[0]) if eos[0] in row else None
                data = b"".join(vocab.tokens[t] or b"" for t in row[:cut])
                if cut is None:  # a valid prefix may stop inside a character, never break one
                    codecs.getincrementaldecoder("utf-8")().decode(data, final=False)
                else:
                    assert data.decode("utf-8") == bpe.decode(row[:cut], skip_special_tokens=False)
                    finished += 1
                checked += 1
    assert checked and finished / checked > 0.5  # the bias towards EOS and closers still lets most rows end


def sample(scores: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    return torch.multinomial(torch.softmax(scores, -1), 1, generator=g)


@pytest.mark.parametrize("dialect", ["groundkit", "qwen-json", "qwen2vl"])
@pytest.mark.parametrize("seed", range(4))
def test_speculative_rollbacks_and_jumps_keep_every_completion_valid(bpe, dialect, seed):
    """Draft k tokens through the processor, accept a random prefix, replace the next token
    (the verifier's), as assisted decoding does: the processor is rolled back every round."""
    eos = [bpe.convert_tokens_to_ids(EOS)]
    grammar = get_grammar(dialect, "abs-original")
    vocab = read_vocabulary(bpe, grammar_literals(grammar), eos)
    bias = trouble_bias(vocab.tokens, eos)
    bias[eos] = 0.0  # long completions: many rounds
    g = torch.Generator().manual_seed(seed)
    rows, width = 12, len(bpe) + 16
    sizes = [ImageSize(int(w), int(h)) for w, h in torch.randint(1, 2000, (rows, 2), generator=g).tolist()]
    proc = make_processor(bpe, grammar, sizes, max_new_tokens=STEPS, eos_token_ids=eos)

    def logits() -> torch.Tensor:
        out = torch.randn(rows, width, generator=g) * 3
        out[:, : len(bias)] += bias
        return out

    ids = torch.full((rows, 2), bpe.convert_tokens_to_ids("a"))  # a prompt of two tokens
    while ids.shape[1] - 2 < STEPS and not all(eos[0] in row for row in ids[:, 2:].tolist()):
        k = int(torch.randint(1, 6, (1,), generator=g))
        draft = ids
        for _ in range(min(k, STEPS - (ids.shape[1] - 2))):
            draft = torch.cat([draft, sample(proc(draft, logits()), g)], 1)
        keep = ids.shape[1] + int(torch.randint(0, draft.shape[1] - ids.shape[1] + 1, (1,), generator=g))
        ids = draft[:, :keep]
        if keep - 2 < STEPS:
            ids = torch.cat([ids, sample(proc(ids, logits()), g)], 1)  # the verifier's token after the accepted prefix
    assert proc.resyncs > 0
    report = check_completions(bpe, grammar, ids[:, 2:], sizes, eos)
    assert not report.violations, report.violations[0]
