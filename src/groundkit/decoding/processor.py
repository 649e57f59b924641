"""``GroundedLogitsProcessor`` for ``model.generate()``, mask replay for training, and the
built-in ``groundkit`` decoding backend."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from transformers import LogitsProcessor

from groundkit.decoding.runtime import BatchConstraint, DeviceTables, as_device_tables, row_bounds
from groundkit.decoding.tables import TokenTables, get_tables, grammar_literals
from groundkit.decoding.vocab import Vocabulary, read_vocabulary, tokenizer_fingerprint
from groundkit.errors import GroundkitError
from groundkit.frames import ImageSize
from groundkit.text.grammar import ComposedGrammar

_VOCABS: dict[tuple[str, str, tuple[int, ...] | None], Vocabulary] = {}
_TABLES: dict[tuple[str, str, tuple[int, ...] | None], TokenTables] = {}
_DEVICE: dict[Any, DeviceTables] = {}


def compile_constraint(tokenizer: Any, grammar: ComposedGrammar, eos_token_ids: Sequence[int] | None = None,
                       use_cache: bool = True) -> TokenTables:
    """Token tables for (grammar, tokenizer): in-process memo, then the disk cache, then a compile."""
    eos = tuple(sorted(eos_token_ids)) if eos_token_ids is not None else None
    key = (grammar.text, tokenizer_fingerprint(tokenizer), eos)
    if key not in _TABLES:
        vkey = (tokenizer_fingerprint(tokenizer), str(sorted(grammar_literals(grammar))), eos)
        if vkey not in _VOCABS:
            _VOCABS[vkey] = read_vocabulary(tokenizer, grammar_literals(grammar), list(eos) if eos else None)
        _TABLES[key] = get_tables(grammar, _VOCABS[vkey], use_cache=use_cache)
    return _TABLES[key]


class GroundedLogitsProcessor(LogitsProcessor):
    """Masks every token that would break the grammar, a value bound, a box ordering or the
    token budget. Row ``i`` belongs to ``image_sizes[i]``.

    The prompt length is taken from the first call; each later call advances every row by
    its last token. Beam search (which reorders rows) is not supported. Works after or
    before top-k/top-p: a row the filters left with nothing allowed becomes uniform over
    its allowed tokens, so no row is ever left with nothing to sample.
    """

    def __init__(self, tables: TokenTables, grammar: ComposedGrammar, image_sizes: Sequence[ImageSize | None] | None = None,
                 max_new_tokens: int | None = None, batch_size: int | None = None, guard: bool = True):
        self.tables, self.grammar = tables, grammar
        self.image_sizes = list(image_sizes) if image_sizes is not None else None
        self.max_new_tokens = max_new_tokens
        self.batch_size = batch_size if batch_size is not None else (len(self.image_sizes) if self.image_sizes else None)
        self.guard = guard
        self.constraint: BatchConstraint | None = None
        self.prompt_length = 0
        self.advanced = 0

    @property
    def eos_token_ids(self) -> list[int]:
        """The tokens that end a completion (allowed only where the grammar accepts)."""
        return [int(i) for i in self.tables.arrays["eos_ids"]]

    def new_constraint(self, batch: int, device: torch.device) -> BatchConstraint:
        sizes = self.image_sizes
        if sizes is not None and len(sizes) != batch:
            if len(sizes) and batch % len(sizes) == 0:  # num_return_sequences / GRPO generations repeat each row
                sizes = [s for s in sizes for _ in range(batch // len(sizes))]
            else:
                raise GroundkitError(f"the processor was built for {len(sizes)} rows, generate() passed {batch}")
        bounds = row_bounds(self.grammar.frame, sizes, batch)
        return BatchConstraint(as_device_tables(self.tables, device, _DEVICE), bounds, self.max_new_tokens)

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if self.constraint is None:
            self.constraint = self.new_constraint(input_ids.shape[0], scores.device)
            self.prompt_length = input_ids.shape[1]
        generated = input_ids.shape[1] - self.prompt_length
        while self.advanced < generated:  # one token per call under generate()
            self.constraint.advance(input_ids[:, self.prompt_length + self.advanced])
            self.advanced += 1
        self.constraint.mask_(scores)
        if self.guard:
            self.constraint.guard_(scores)
        return scores

    def replay_mask(self, logits: torch.Tensor, completion_ids: torch.Tensor, completion_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Apply, to ``logits`` (B, T, V) of the completion positions, the masks generation used."""
        return replay_with_tables(self.tables, self.grammar, logits, completion_ids, self.image_sizes, self.max_new_tokens, completion_mask)


def replay_with_tables(tables: TokenTables, grammar: ComposedGrammar, logits: torch.Tensor, completion_ids: torch.Tensor,
                       image_sizes: Sequence[ImageSize | None] | None, max_new_tokens: int | None,
                       completion_mask: torch.Tensor | None = None) -> torch.Tensor:
    """Masked copy of ``logits``: a scan over the completion ids through the same tables."""
    batch, steps = completion_ids.shape
    sizes = list(image_sizes) if image_sizes is not None else None
    if sizes is not None and len(sizes) != batch and len(sizes) and batch % len(sizes) == 0:
        sizes = [s for s in sizes for _ in range(batch // len(sizes))]
    constraint = BatchConstraint(as_device_tables(tables, logits.device, _DEVICE), row_bounds(grammar.frame, sizes, batch), max_new_tokens)
    disallowed = torch.zeros(logits.shape, dtype=torch.bool, device=logits.device)
    scratch = torch.zeros(logits.shape[0], logits.shape[-1], dtype=torch.float32, device=logits.device)
    with torch.no_grad():
        for t in range(steps):
            scratch.zero_()
            torch.isneginf(constraint.mask_(scratch), out=disallowed[:, t, :])
            constraint.advance(completion_ids[:, t], None if completion_mask is None else completion_mask[:, t].bool())
    return logits.masked_fill(disallowed, float("-inf"))  # out of place: gradients flow to the allowed logits


def replay_mask(tokenizer: Any, grammar: ComposedGrammar, logits: torch.Tensor, completion_ids: torch.Tensor,
                image_sizes: Sequence[ImageSize | None] | None = None, max_new_tokens: int | None = None,
                completion_mask: torch.Tensor | None = None) -> torch.Tensor:
    """The generation-time masks applied to ``logits`` (B, T, V) for prompt-free ``completion_ids``."""
    return replay_with_tables(compile_constraint(tokenizer, grammar), grammar, logits, completion_ids, image_sizes,
                              max_new_tokens, completion_mask)


def make_processor(tokenizer: Any, grammar: ComposedGrammar, image_sizes: Sequence[ImageSize | None] | None = None,
                   max_new_tokens: int | None = None, eos_token_ids: Sequence[int] | None = None) -> GroundedLogitsProcessor:
    return GroundedLogitsProcessor(compile_constraint(tokenizer, grammar, eos_token_ids), grammar, image_sizes, max_new_tokens)
