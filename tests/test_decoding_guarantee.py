"""The decoding guarantee, on random logits: >= 2,000 rollouts over every dialect and frame,
the real Qwen2 vocabulary and a SentencePiece one, mixed per-row image sizes, several
sampling settings (warpers before and after the processor), and budget-closing cases."""

from __future__ import annotations

import zlib

import pytest
import torch

from groundkit.backbones.tokenizers import find_qwen2_tokenizer_dir, qwen_tokenizer, sentencepiece_tokenizer
from groundkit.decoding import make_processor
from groundkit.decoding.check import check_completions, grammar_bias, sample_rollouts
from groundkit.decoding.vocab import eos_token_ids
from groundkit.frames import ImageSize
from groundkit.registry import get_registry
from groundkit.text.grammar import get_grammar

FRAMES = [None, "percent-100", "unit", "abs-original", "abs-resized"]
SAMPLING = [
    dict(),
    dict(temperature=0.7, top_k=20),
    dict(top_k=1, warpers_first=True),  # the filter keeps one token, often a forbidden one: the guard must act
    dict(greedy=True),
    dict(top_p=0.9, warpers_first=True),  # sorts the vocabulary each step: SentencePiece vocabulary only
]
ROWS, STEPS = 24, 64


@pytest.fixture(scope="module")
def qwen():
    if find_qwen2_tokenizer_dir() is None:
        pytest.skip("../shared/tokenizers/qwen2 is absent: the real Qwen2 vocabulary is needed for this test")
    return qwen_tokenizer()


@pytest.fixture(scope="module")
def sentencepiece():
    return sentencepiece_tokenizer()


def combos():
    for dialect in get_registry().dialects.names():
        for frame in FRAMES:
            if dialect == "molmo" and frame in ("abs-original", "abs-resized"):
                continue  # molmo writes percentages
            yield dialect, frame


def mixed_sizes(n: int, seed: int) -> list[ImageSize]:
    g = torch.Generator().manual_seed(seed)
    return [ImageSize(int(w), int(h)) for w, h in torch.randint(28, 2400, (n, 2), generator=g).tolist()]


def run(tokenizer, dialect, frame, seed, rows=ROWS, steps=STEPS, budget=None, **sampling):
    grammar = get_grammar(dialect, frame)
    sizes = mixed_sizes(rows, seed)
    eos = eos_token_ids(tokenizer)
    processor = make_processor(tokenizer, grammar, sizes, max_new_tokens=budget or steps)
    vocab = len(tokenizer) + 64  # the model's logits may be wider than the tokenizer
    ids = sample_rollouts(processor, vocab, rows, budget or steps, eos, bias=grammar_bias(tokenizer, grammar),
                          generator=torch.Generator().manual_seed(seed), **sampling)
    return check_completions(tokenizer, grammar, ids, sizes, eos)


@pytest.mark.parametrize(("dialect", "frame"), list(combos()))
def test_random_rollouts_qwen2_vocab(qwen, dialect, frame):
    total_groundings = 0
    for i, sampling in enumerate(SAMPLING[:2] if frame else SAMPLING[:4]):
        report = run(qwen, dialect, frame, seed=zlib.crc32(f"{dialect}{frame}{i}".encode()) % 10_000, **sampling)
        assert not report.violations, report.violations[0]
        assert all(report.finished), "budget-aware closing: every completion ends within max_new_tokens"
        total_groundings += report.groundings
    assert total_groundings > 0, "the biased rollouts should write groundings"


@pytest.mark.parametrize(("dialect", "frame"), list(combos()))
def test_random_rollouts_sentencepiece_vocab(sentencepiece, dialect, frame):
    for i, sampling in enumerate([SAMPLING[0], SAMPLING[2], SAMPLING[4]]):
        report = run(sentencepiece, dialect, frame, seed=i, **sampling)
        assert not report.violations, report.violations[0]
        assert all(report.finished)


@pytest.mark.parametrize("dialect", get_registry().dialects.names())
def test_budget_closing_at_the_shortest_budget(sentencepiece, dialect):
    from groundkit.decoding import compile_constraint

    grammar = get_grammar(dialect)
    shortest = compile_constraint(sentencepiece, grammar).stats.get("min_tokens") or int(
        compile_constraint(sentencepiece, grammar).dist[compile_constraint(sentencepiece, grammar).start])
    for extra in (0, 1, 7, 23):
        report = run(sentencepiece, dialect, None, seed=extra, rows=32, budget=shortest + extra)
        assert not report.violations, report.violations[0]
        assert all(report.finished), f"budget {shortest + extra}: some completion did not close"


def test_rollout_count_meets_the_guarantee_target():
    qwen_rows = sum(2 if f else 4 for _d, f in combos()) * ROWS
    sp_rows = len(list(combos())) * 3 * ROWS + len(get_registry().dialects.names()) * 4 * 32
    assert qwen_rows + sp_rows >= 2000, (qwen_rows, sp_rows)


def test_too_small_budget_still_samples_something(sentencepiece):
    report = run(sentencepiece, "groundkit", None, seed=3, rows=8, budget=3)
    assert not any("finished completion invalid" in v for v in report.violations)
    assert len(report.texts) == 8


def test_numbers_track_every_row_bound(sentencepiece):
    """Per-image bounds differ per row: a 30-pixel-wide image never gets an x above 30."""
    sizes = [ImageSize(30, 2000), ImageSize(2000, 30)] * 8
    grammar = get_grammar("groundkit", "abs-original")
    eos = eos_token_ids(sentencepiece)
    processor = make_processor(sentencepiece, grammar, sizes, max_new_tokens=80)
    ids = sample_rollouts(processor, len(sentencepiece), len(sizes), 80, eos, bias=grammar_bias(sentencepiece, grammar, 6.0),
                          generator=torch.Generator().manual_seed(5))
    report = check_completions(sentencepiece, grammar, ids, sizes, eos)
    assert not report.violations, report.violations[0]
    assert report.groundings > 0
