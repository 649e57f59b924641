"""Constrained rollouts and mask-consistent log-probabilities for TRL's GRPOTrainer.

Rollouts: TRL's transformers generation path calls ``model.generate(**inputs,
generation_config=...)`` and passes no logits processor (``GenerationConfig`` rejects one), so
:func:`injected_logits_processor` shadows ``generate`` on the unwrapped model for one call,
adding the grounded logits processor built for that batch (one frame per row: per-image bounds).

Log-probs: with constrained rollouts the tokens were sampled from the *masked* distribution, so
the policy / reference / old log-probs in the loss must be those of the masked distribution
too (else the importance ratio is biased). :class:`MaskReplayingModel` stands in for the model
in ``_get_per_token_logps_and_entropies``: it replays the processor's masks over the completion
ids (one scan) and returns the log-probs and entropies of the masked distribution in the shape
TRL's fused LM head returns them, without a (B, T, V) mask or masked copy (see
:mod:`groundkit.training.masked_logps` and :mod:`groundkit.training.fused_masked`).
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Iterator, Sequence
from types import SimpleNamespace
from typing import Any

from groundkit.errors import GroundkitError
from groundkit.frames import ImageSize
from groundkit.text.grammar import ComposedGrammar

log = logging.getLogger(__name__)


def build_processor(tokenizer: Any, grammar: ComposedGrammar, sizes: Sequence[ImageSize | None],
                    max_new_tokens: int, backend: str) -> Any:
    """The grounded logits processor of the named decoding backend for one batch."""
    from groundkit.decoding import grounded_logits_processor

    return grounded_logits_processor(tokenizer, grammar, image_sizes=list(sizes), max_new_tokens=max_new_tokens,
                                     backend=backend)


def row_sizes(images: Sequence[Any] | None, n: int) -> list[ImageSize | None]:
    """The original size of each row's (first) image; None for rows without one."""
    if images is None:
        return [None] * n
    out: list[ImageSize | None] = []
    for imgs in images:
        first = imgs[0] if isinstance(imgs, (list, tuple)) and imgs else imgs
        size = getattr(first, "size", None)
        out.append(ImageSize(int(size[0]), int(size[1])) if isinstance(size, tuple) else None)
    return out


@contextlib.contextmanager
def injected_logits_processor(model: Any, processor: Any) -> Iterator[None]:
    """Within the block, ``model.generate(...)`` also applies ``processor`` (a per-instance shadow)."""
    from transformers import LogitsProcessorList

    original = model.generate

    @functools.wraps(original)
    def generate(*args: Any, **kwargs: Any) -> Any:
        extra = LogitsProcessorList([processor])
        given = kwargs.pop("logits_processor", None)
        return original(*args, logits_processor=LogitsProcessorList([*(given or []), *extra]), **kwargs)

    model.__dict__["generate"] = generate
    try:
        yield
    finally:
        model.__dict__.pop("generate", None)


def check_replay_support(processor: Any, backend: str) -> None:
    if not callable(getattr(processor, "replay_mask", None)):
        raise GroundkitError(
            f"decoding backend {backend!r} has no replay_mask, so mask-consistent log-probs cannot be computed; "
            "set generation.mask_consistent_logps: false (biased importance ratio) or use a backend that replays"
        )


def masked_logps(logits: Any, completion_ids: Any, completion_mask: Any, processor: Any, compute_entropy: bool,
                 temperature: float = 1.0, offset: int = 0) -> tuple[Any, Any, int]:
    """Log-probs (and entropies) of ``completion_ids`` (B, T) under the replayed masks.

    ``logits[:, offset:offset + T]`` divided by ``temperature`` predict ``completion_ids``.
    Returns (logps, entropy or None, violations): a token the replayed mask forbids (a mismatch
    between generation and replay) keeps its unmasked log-prob and is counted, so one bad row
    cannot turn the loss into NaN. With the built-in processor the masks stay sparse
    (:mod:`groundkit.training.masked_logps`: no (B, T, V) mask or masked copy); a backend with
    only ``replay_mask`` gets :func:`dense_masked_logps`.
    """
    from groundkit.decoding.replay import replay_states, supports_replay_states
    from groundkit.training.masked_logps import sparse_masked_logps

    if supports_replay_states(processor):
        replay = replay_states(processor, completion_ids, completion_mask)
        out = sparse_masked_logps(logits, completion_ids, completion_mask, replay, compute_entropy, temperature, offset)
        return out.logps, out.entropy, out.n_violations
    steps = completion_ids.shape[1]
    window = logits[:, offset:offset + steps]
    return dense_masked_logps(window / temperature if temperature != 1.0 else window, completion_ids, completion_mask,
                              processor, compute_entropy)


def dense_masked_logps(logits: Any, completion_ids: Any, completion_mask: Any, processor: Any,
                       compute_entropy: bool) -> tuple[Any, Any, int]:
    """:func:`masked_logps` through ``processor.replay_mask``: a (B, T, V) masked copy and a
    float32 log-softmax over all of it (about 6.5 copies of the logits at the peak). The path
    for backends without sparse replay, and the reference the sparse path is tested against."""
    import torch

    masked = processor.replay_mask(logits, completion_ids, completion_mask)
    logp_all = torch.log_softmax(masked.to(torch.promote_types(masked.dtype, torch.float32)), dim=-1)
    index = completion_ids.unsqueeze(-1)
    logps = logp_all.gather(-1, index).squeeze(-1)
    valid = completion_mask.bool()
    bad = valid & ~torch.isfinite(logps)
    violations = int(bad.sum())
    if violations:
        plain = torch.log_softmax(logits.to(logp_all.dtype), dim=-1).gather(-1, index).squeeze(-1)
        logps = torch.where(bad, plain, logps)
    logps = logps.masked_fill(~valid, 0.0)
    entropy = None
    if compute_entropy:
        safe = torch.where(torch.isfinite(logp_all), logp_all, torch.zeros_like(logp_all))  # no 0 * inf in the backward
        plogp = torch.where(torch.isfinite(logp_all), safe.exp() * safe, torch.zeros_like(logp_all))
        entropy = (-plogp.sum(-1)).masked_fill(~valid, 0.0)
    return logps, entropy, violations


class MaskReplayingModel:
    """Called like TRL's fused-LM-head model (``model(**inputs, labels=..., fused_lm_head=True)``),
    returns the masked distribution's ``log_probs`` / ``entropy`` for the last ``logits_to_keep``
    positions. Rows are consumed in order across TRL's chunked calls (``sizes[i]`` = row i).

    With the built-in processor one replay scan per call serves log-probs and entropies. With
    ``fused`` (TRL's fused LM head, which GRPOTrainer adds to its models) TRL's forward runs as
    usual and only its log-prob function is swapped for the masked one
    (:mod:`groundkit.training.fused_masked`): no (B, T, V) logits. Otherwise the last
    ``logits_to_keep + 1`` logits are computed and masked chunk by chunk; a backend with only
    ``replay_mask`` gets the dense path."""

    def __init__(self, model: Any, make_processor: Any, sizes: Sequence[ImageSize | None], logits_to_keep: int,
                 temperature: float, on_violations: Any = None, fused: bool = True):
        self.model, self.make_processor = model, make_processor
        self.sizes, self.k, self.temperature = list(sizes), logits_to_keep, temperature
        self.offset = 0
        self.on_violations = on_violations
        self.fused = fused

    def __call__(self, *, labels: Any, fused_lm_head: bool = True, **inputs: Any) -> Any:
        from groundkit.decoding.replay import replay_states, supports_replay_states
        from groundkit.training.fused_masked import MaskedCall, fused_head_available, masked_lm_head
        from groundkit.training.masked_logps import chunk_bytes_for, sparse_masked_logps

        k = self.k
        ids = inputs["input_ids"][:, -k:]
        mask = labels[:, -k:] != -100
        rows = ids.size(0)
        sizes = self.sizes[self.offset:self.offset + rows]
        if len(sizes) != rows:
            raise GroundkitError(f"mask replay: {rows} rows from offset {self.offset}, but {len(self.sizes)} row sizes known")
        self.offset += rows
        processor = self.make_processor(sizes)
        if not supports_replay_states(processor):
            inputs.pop("output_router_logits", None)
            out = self.model(**inputs, use_cache=False, logits_to_keep=k + 1)
            logits = out.logits
            logps, entropy, violations = masked_logps(logits, ids, mask.long(), processor, compute_entropy=True,
                                                      temperature=self.temperature, offset=logits.size(1) - (k + 1))
            self._report(violations)
            return SimpleNamespace(log_probs=logps, entropy=entropy, aux_loss=None, logits=None)
        replay = replay_states(processor, ids, mask)
        if self.fused and fused_head_available():
            call = MaskedCall(replay, labels, k, chunk_bytes_for(ids.device))
            with masked_lm_head(call):
                out = self.model(**inputs, labels=labels, fused_lm_head=True)
            if not call.called or call.violations is None:
                raise GroundkitError("mask replay: the model has no TRL fused LM head (add_fused_lm_head) to mask; "
                                     "build the trainer through groundkit.training.grpo")
            self._report(int(call.violations.sum()))
            return SimpleNamespace(log_probs=out.log_probs, entropy=out.entropy, aux_loss=getattr(out, "aux_loss", None),
                                   logits=None)
        inputs.pop("output_router_logits", None)
        out = self.model(**inputs, use_cache=False, logits_to_keep=k + 1)
        result = sparse_masked_logps(out.logits, ids, mask, replay, True, self.temperature, offset=out.logits.size(1) - (k + 1))
        self._report(result.n_violations)
        return SimpleNamespace(log_probs=result.logps, entropy=result.entropy, aux_loss=None, logits=None)

    def _report(self, violations: int) -> None:
        if violations and self.on_violations is not None:
            self.on_violations(violations)
