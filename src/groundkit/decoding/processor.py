"""``GroundedLogitsProcessor`` for ``model.generate()`` (with ``generate_kwargs`` / ``decode``
around it), mask replay for training, and the tables' in-process memo."""

from __future__ import annotations

import sys
import warnings
from collections.abc import Sequence
from typing import Any

import torch
from transformers import LogitsProcessor, LogitsProcessorList

from groundkit.decoding.rows import check_sizes, expand_rows, prompt_bounds
from groundkit.decoding.runtime import BatchConstraint, DeviceTables, as_device_tables, row_bounds
from groundkit.decoding.tables import DecodingWarning, TokenTables, get_tables, grammar_literals
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


BEAM_SEARCH = frozenset({"_beam_search", "_group_beam_search", "_constrained_beam_search", "beam_search", "beam_sample",
                         "group_beam_search", "constrained_beam_search", "_beam_sample"})


class GroundedLogitsProcessor(LogitsProcessor):
    """Masks every token that would break the grammar, a value bound, a box ordering or the
    token budget. Row ``i`` belongs to ``image_sizes[i // num_return_sequences]``.

    The processor knows where it is: each call checks that ``input_ids`` extend what the
    previous call saw (the length and the previous last token). A new generation (a shorter input, another prompt, another
    batch) starts afresh; a rollback or a jump (assisted / speculative decoding) is
    resynchronised by replaying the tables over the new suffix. On a GPU the one-token step
    compares on the device, and a row that does not match is ended (only EOS allowed) and
    reported by :meth:`check` / :meth:`decode` rather than read back each step. Beam search (which
    reorders rows and scores log-probs) raises at the first call.

    Works after or before top-k/top-p: a row the filters left with nothing allowed becomes
    uniform over its allowed tokens, so no row is ever left with nothing to sample.
    Use :meth:`generate_kwargs` and :meth:`decode` around ``model.generate``.
    """

    def __init__(self, tables: TokenTables, grammar: ComposedGrammar, image_sizes: Sequence[ImageSize | None] | None = None,
                 max_new_tokens: int | None = None, batch_size: int | None = None, guard: bool = True,
                 num_return_sequences: int = 1, tokenizer: Any = None, pad_token_id: int | None = None):
        self.tables, self.grammar = tables, grammar
        for name, value in (("max_new_tokens", max_new_tokens), ("num_return_sequences", num_return_sequences)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise GroundkitError(f"{name}= must be a positive integer, got {value!r}")
        self.image_sizes = check_sizes(grammar.frame, image_sizes)
        self.bounds = prompt_bounds(grammar.frame, self.image_sizes)
        self.max_new_tokens = max_new_tokens
        self.num_return_sequences = num_return_sequences
        rows = len(self.image_sizes) * num_return_sequences if self.image_sizes is not None else None
        if batch_size is not None and rows is not None and batch_size != rows:
            raise GroundkitError(f"batch_size={batch_size} but image_sizes has {len(self.image_sizes or [])} rows "
                                 f"(x num_return_sequences={num_return_sequences})")
        self.batch_size = batch_size if batch_size is not None else rows
        self.guard = guard
        self.tokenizer = tokenizer
        self.pad_token_id = pad_token_id
        self.constraint: BatchConstraint | None = None
        self.prompt_length = 0
        self.advanced = 0
        self.resyncs = 0  # rollbacks / jumps replayed (assisted decoding), for diagnostics
        self._seen: torch.Tensor | None = None  # the previous call's input_ids (generate() builds a new one per step)
        self._poisoned: torch.Tensor | None = None  # rows ended on the device because they lost track
        self._armed = False  # set by generate_kwargs(): the next call starts a new generation

    @property
    def eos_token_ids(self) -> list[int]:
        """The tokens that end a completion (allowed only where the grammar accepts)."""
        return [int(i) for i in self.tables.arrays["eos_ids"]]

    def new_constraint(self, batch: int, device: torch.device) -> BatchConstraint:
        if self.batch_size is not None and self.bounds is None and batch != self.batch_size:
            raise GroundkitError(f"the processor was built for {self.batch_size} rows, generate() passed {batch}")
        bounds = expand_rows(self.bounds, self.grammar.frame, batch, self.num_return_sequences)
        return BatchConstraint(as_device_tables(self.tables, device, _DEVICE), bounds, self.max_new_tokens)

    # --- where generation is -----------------------------------------------------------------
    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        length = input_ids.shape[1]
        c = self.constraint
        if (c is None or self._seen is None or self._armed or input_ids.shape[0] != c.batch
                or length <= self.prompt_length):
            self._start(input_ids, scores.device)
        elif length == self._seen.shape[1] + 1:
            self._step(input_ids)
        else:
            self._resync(input_ids)
        self._seen = input_ids
        assert self.constraint is not None
        self.constraint.mask_(scores)
        if self.guard:
            self.constraint.guard_(scores)
        return scores

    def _start(self, input_ids: torch.Tensor, device: torch.device) -> None:
        """The first call of a generation: the whole input is the prompt."""
        caller = _beam_search_caller()
        if caller is not None:
            raise GroundkitError(f"beam search ({caller}, num_beams > 1) is not supported by the grounded processor: it "
                                 "reorders rows and scores log-probs; use greedy or sampling (num_return_sequences= for several)")
        self.constraint = self.new_constraint(input_ids.shape[0], device)
        self.prompt_length = input_ids.shape[1]
        self.advanced = 0
        self._armed = False
        self._poisoned = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=device)

    def _step(self, input_ids: torch.Tensor) -> None:
        """One new token per row: the normal step under ``generate()``."""
        c, seen = self.constraint, self._seen
        assert c is not None and seen is not None and self._poisoned is not None
        last = seen.shape[1] - 1
        if c.dt.host and c.use_host:  # reading is free on the CPU (numpy views: ~2 us)
            if input_ids.numpy()[:, last].tolist() != seen.numpy()[:, last].tolist():
                self._resync(input_ids)
                return
            c.advance(input_ids[:, -1])
        else:  # no host read: compare the previous last token on the device, end rows that differ
            lost = input_ids[:, last] != seen[:, last]
            c.advance(input_ids[:, -1])
            c.state.copy_(torch.where(lost, torch.full_like(c.state, self.tables.finished), c.state))
            self._poisoned |= lost
        self.advanced += 1

    def _resync(self, input_ids: torch.Tensor) -> None:
        """A rollback, a jump, or a new prompt of a length that looks like a step: one host
        read decides (assisted decoding reads its accepted count every round anyway)."""
        assert self.constraint is not None and self._seen is not None
        p = self.prompt_length
        if not torch.equal(input_ids[:, :p], self._seen[:, :p]):
            self._start(input_ids, self.constraint.state.device)
            return
        device = self.constraint.state.device
        if not self._continues_generation(input_ids[:, p:].tolist()):
            self._start(input_ids, device)  # e.g. the next chat turn: the old prompt, answer and more
            return
        self.constraint = self.new_constraint(input_ids.shape[0], device)
        for t in range(p, input_ids.shape[1]):
            self.constraint.advance(input_ids[:, t])
        self.advanced = input_ids.shape[1] - p
        self.resyncs += 1

    def _continues_generation(self, rows: list[list[int]]) -> bool:
        """Whether tokens after the prompt can be this generation's own: every row a path the
        tables allow, followed after its first EOS by nothing but EOS / padding."""
        eos = set(self.eos_token_ids)
        filler = eos | {self.pad_token_id if self.pad_token_id is not None else min(eos)}
        scalar = as_device_tables(self.tables, torch.device("cpu"), _DEVICE).host_lists.scalar.next_state
        for row in rows:
            state = self.tables.start
            for i, t in enumerate(row):
                if t in eos:
                    if any(u not in filler for u in row[i + 1 :]):
                        return False
                    break
                state = scalar(state, t)
                if state == self.tables.dead:
                    return False
        return True

    # --- one source of truth around model.generate ------------------------------------------
    def generate_kwargs(self) -> dict[str, Any]:
        """``model.generate(**inputs, **proc.generate_kwargs())``: this processor, its budget,
        the grammar's end tokens and the padding id (and the declared repetition). The next
        call then starts a new generation, whatever its input."""
        self._armed = True
        eos = self.eos_token_ids
        kwargs: dict[str, Any] = {"logits_processor": LogitsProcessorList([self]), "eos_token_id": eos,
                                  "pad_token_id": self.pad_token_id if self.pad_token_id is not None else eos[0]}
        if self.max_new_tokens is not None:
            kwargs["max_new_tokens"] = self.max_new_tokens
        if self.num_return_sequences > 1:
            kwargs["num_return_sequences"] = self.num_return_sequences
        return kwargs

    def check(self) -> None:
        """Raise :class:`GroundkitError` if a row lost track on the device (see the class doc)."""
        if self._poisoned is not None and bool(self._poisoned.any()):
            rows = torch.nonzero(self._poisoned).flatten().tolist()
            raise GroundkitError(f"rows {rows}: input_ids did not extend what the processor saw on the previous call, so "
                                 "those rows were ended and their text is not guaranteed (a generation mode that rewrites "
                                 "past tokens, e.g. beam search, or a processor shared between generate() calls at once)")

    def completions(self, sequences: Any) -> list[list[int]]:
        """Per row, the generated ids: prompt stripped, cut before the first EOS."""
        self.check()
        sequences = getattr(sequences, "sequences", sequences)
        if sequences.shape[1] < self.prompt_length:
            raise GroundkitError(f"sequences have {sequences.shape[1]} positions, fewer than the prompt's {self.prompt_length}: "
                                 "pass what model.generate() returned for this processor's generation")
        eos = set(self.eos_token_ids)
        out: list[list[int]] = []
        short: list[int] = []
        for row, ids in enumerate(sequences[:, self.prompt_length :].tolist()):
            cut = next((i for i, t in enumerate(ids) if t in eos), None)
            out.append(ids if cut is None else ids[:cut])
            if cut is None and self.max_new_tokens is not None and len(ids) < self.max_new_tokens:
                short.append(row)
        if short:
            warnings.warn(f"rows {short} stopped after {sequences.shape[1] - self.prompt_length} tokens without an end token, "
                          f"before the processor's budget of {self.max_new_tokens}: generate() was given a smaller "
                          "max_new_tokens / max_length, so the traces were not closed (use proc.generate_kwargs())",
                          DecodingWarning, stacklevel=2)
        return out

    def decode(self, sequences: Any) -> list[str]:
        """The completions' text: prompt stripped, cut at the first EOS, keeping the dialect's
        own special tokens (``<|box_start|>``) and the exact bytes (no clean-up of spaces)."""
        if self.tokenizer is None:
            raise GroundkitError("this processor was built without a tokenizer; build it with make_processor(tokenizer, ...)")
        return [self.tokenizer.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)
                for ids in self.completions(sequences)]

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
                   max_new_tokens: int | None = None, eos_token_ids: Sequence[int] | None = None,
                   num_return_sequences: int = 1) -> GroundedLogitsProcessor:
    """The processor for one generation batch (sizes are checked here, not at the first step)."""
    return GroundedLogitsProcessor(compile_constraint(tokenizer, grammar, eos_token_ids), grammar, image_sizes, max_new_tokens,
                                   num_return_sequences=num_return_sequences, tokenizer=tokenizer,
                                   pad_token_id=getattr(tokenizer, "pad_token_id", None))


def _beam_search_caller() -> str | None:
    """The name of the transformers beam-search loop calling the processor, if any."""
    frame = sys._getframe(2)
    for _ in range(8):
        if frame is None:
            return None
        if frame.f_code.co_name in BEAM_SEARCH:
            return frame.f_code.co_name
        frame = frame.f_back
    return None
