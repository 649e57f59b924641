"""Random-logit rollouts through the processor, and the checks of the decoding guarantee.

Used by the test suite and ``benchmarks/decoding.py``: logits are random (optionally biased
towards the grammar's own tokens so groundings actually get written), sampling settings
vary, and every finished completion must parse, lie in bounds and be non-degenerate.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from groundkit.errors import ParseError
from groundkit.frames import ImageSize
from groundkit.text.grammar import ComposedGrammar
from groundkit.text.parser import TraceParser


@dataclass
class RolloutReport:
    """Outcome of a batch of rollouts: texts, which finished, and every violation found."""

    texts: list[str] = field(default_factory=list)
    finished: list[bool] = field(default_factory=list)
    groundings: int = 0
    violations: list[str] = field(default_factory=list)


def grammar_bias(tokenizer: Any, grammar: ComposedGrammar, strength: float = 11.0) -> torch.Tensor:
    """A logit bias towards tokens of the grammar's literals and digits (so rollouts ground)."""
    from groundkit.decoding.tables import grammar_literals

    bias = torch.zeros(len(tokenizer))
    pieces = set(grammar_literals(grammar)) | set("0123456789.,") | {" label=\"", "\"", "cup", " the"}
    for piece in pieces:
        for i in tokenizer.encode(piece, add_special_tokens=False):
            bias[i] = strength
    return bias


def sample_rollouts(processor: Any, vocab_size: int, batch: int, steps: int, eos_ids: Sequence[int], *,
                    bias: torch.Tensor | None = None, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0,
                    warpers_first: bool = False, greedy: bool = False, generator: torch.Generator | None = None) -> torch.Tensor:
    """(batch, steps) ids sampled from random logits through ``processor``; rows stop at EOS."""
    from transformers import LogitsProcessorList, TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

    warpers = []
    if temperature != 1.0:
        warpers.append(TemperatureLogitsWarper(temperature))
    if top_k:
        warpers.append(TopKLogitsWarper(top_k))
    if top_p < 1.0:
        warpers.append(TopPLogitsWarper(top_p))
    chain = LogitsProcessorList(warpers + [processor] if warpers_first else [processor] + warpers)
    ids = torch.zeros((batch, 1), dtype=torch.long)
    eos = torch.tensor(list(eos_ids))
    done = torch.zeros(batch, dtype=torch.bool)
    # a pool of random rows, re-drawn per step by index and shifted: cheap, still random per row
    pool = torch.randn((max(8, batch), vocab_size), generator=generator) * 3.0
    for step in range(steps):
        if bool(done.all()):  # every row ended: the rest is EOS padding
            return torch.cat([ids[:, 1:], eos[0].expand(batch, steps - step)], 1)
        pick = torch.randint(0, pool.shape[0], (batch,), generator=generator)
        shift = torch.randint(0, vocab_size, (1,), generator=generator)
        logits = pool[pick].roll(int(shift), dims=1)
        if bias is not None:
            logits[:, : bias.shape[0]] += bias
        scores = chain(ids, logits)
        if greedy:
            nxt = scores.argmax(-1)
        else:
            # inverse-CDF sampling: exact, and far cheaper than torch.multinomial on a wide vocabulary
            cdf = torch.softmax(scores, -1).cumsum(-1)
            u = torch.rand((batch, 1), generator=generator) * cdf[:, -1:]
            nxt = torch.searchsorted(cdf, u).squeeze(1).clamp_max(vocab_size - 1)
        nxt = torch.where(done, eos[0], nxt)
        done |= torch.isin(nxt, eos)
        ids = torch.cat([ids, nxt[:, None]], 1)
    return ids[:, 1:]


def check_completions(tokenizer: Any, grammar: ComposedGrammar, ids: torch.Tensor, sizes: Sequence[ImageSize],
                      eos_ids: Sequence[int]) -> RolloutReport:
    """Decode each row up to EOS; finished rows must parse with values in bounds and boxes
    non-degenerate (the parser checks both); unfinished rows must be valid prefixes."""
    parser = TraceParser(grammar)
    report = RolloutReport()
    eos = set(eos_ids)
    for row, size in zip(ids.tolist(), sizes):
        cut = next((i for i, t in enumerate(row) if t in eos), None)
        text = tokenizer.decode(row[:cut] if cut is not None else row, skip_special_tokens=False)
        report.texts.append(text)
        report.finished.append(cut is not None)
        try:
            trace = parser.parse(text, size)
            report.groundings += len(trace.groundings)
            if cut is None:
                pass  # a complete trace that ran into the budget before its EOS is fine
        except ParseError as err:
            if cut is not None or not err.truncated:
                report.violations.append(f"{'finished' if cut is not None else 'cut'} completion invalid: {err}\n{text!r}")
    return report
