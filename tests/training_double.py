"""A TEST DOUBLE of the constrained-decoding engine, for the training tests only.

It implements the decoding contract the lead's engine provides (``groundkit.decoding``:
a ``transformers`` logits processor that treats ``input_ids.shape[1]`` at its first call as
the prompt length, plus ``replay_mask(logits, completion_ids, completion_mask)``), but
instead of compiling the grammar it allows only a few complete, valid traces per row
(written in the grammar's dialect and frame for that row's image size), token by token:
where the traces share a prefix one token is allowed, where they branch several are. So
every rollout parses and the masked distribution is non-trivial. It registers as the
decoding backend ``test-choices``; the real code path (``grounded_logits_processor``) is used.

When the real engine lands (``groundkit.decoding`` exports ``replay_mask``), the tests marked
``real_engine`` run against the backend ``groundkit`` as well.
"""

from __future__ import annotations

from typing import Any

import torch

from groundkit import Grounding, ImageSize, Text, Trace, format_trace, hookimpl
from groundkit.decoding import DecodingBackend

NAME = "test-choices"


def variants(grammar, size: ImageSize | None) -> list[str]:
    """Several valid traces in the grammar's dialect/frame (some with groundings, one without)."""
    types = [t.name for t in grammar.types]
    out = []
    for answer, n in (("1", 1), ("2", 2), ("3", 0)):
        think: list = [Text("I count them ")]
        for k in range(n):
            x, y = 0.2 + 0.3 * k, 0.4
            g = Grounding("point", (x, y), "cup") if "point" in types else Grounding("box", (x, y, x + 0.2, y + 0.3), "cup")
            think += [g, Text(" ")]
        think.append(Text("so that is it."))
        out.append(format_trace(Trace(tuple(think), answer), grammar.dialect.name, grammar.frame.name, image_size=size))
    return out


class ChoicesProcessor:
    """Allows, per row, only the next tokens of the valid traces the row's prefix still matches."""

    def __init__(self, tokenizer: Any, grammar: Any, image_sizes: list, max_new_tokens: int | None):
        self.eos = tokenizer.eos_token_id
        self.targets = []
        for size in image_sizes:
            self.targets.append([tokenizer.encode(t, add_special_tokens=False) + [self.eos] for t in variants(grammar, size)])
        self.max_new_tokens = max_new_tokens
        self.prompt_length: int | None = None
        self.steps: list[torch.Tensor] = []  # masked scores of each generation step (recorded for tests)
        self.raw: list[torch.Tensor] = []  # the scores before masking

    def allowed(self, row: int, prefix: list[int]) -> set[int]:
        n = len(prefix)
        nxt = {t[n] for t in self.targets[row] if len(t) > n and t[:n] == prefix}
        return nxt or {self.eos}

    def _mask(self, rows_prefixes: list[list[int]], scores: torch.Tensor) -> torch.Tensor:
        keep = torch.zeros_like(scores, dtype=torch.bool)
        for i, prefix in enumerate(rows_prefixes):
            keep[i, list(self.allowed(i, prefix))] = True
        return scores.masked_fill(~keep, float("-inf"))

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if self.prompt_length is None:
            self.prompt_length = input_ids.shape[1]
        prefixes = [row[self.prompt_length:].tolist() for row in input_ids]
        out = self._mask(prefixes, scores)
        self.steps.append(out.detach().clone())
        self.raw.append(scores.detach().clone())
        return out

    def replay_mask(self, logits: torch.Tensor, completion_ids: torch.Tensor, completion_mask: Any = None) -> torch.Tensor:
        ids = completion_ids.tolist()
        keep = torch.zeros_like(logits, dtype=torch.bool)
        for i, row in enumerate(ids):
            for t in range(len(row)):
                keep[i, t, list(self.allowed(i, row[:t]))] = True
        return logits.masked_fill(~keep, float("-inf"))


class ChoicesBackend(DecodingBackend):
    name = NAME
    description = "test double: a few valid traces per row (training tests only)"
    created: list[ChoicesProcessor] = []

    def logits_processor(self, tokenizer, grammar, image_sizes=None, max_new_tokens=None):
        proc = ChoicesProcessor(tokenizer, grammar, list(image_sizes or []), max_new_tokens)
        ChoicesBackend.created.append(proc)
        return proc


class Plugin:
    @hookimpl
    def register_decoding_backends(self, register):
        register(ChoicesBackend())


def real_engine_available() -> bool:
    """Whether the lead's engine has landed (``groundkit.decoding.replay_mask`` and a ``groundkit`` backend)."""
    import groundkit.decoding as decoding
    from groundkit.registry import get_registry

    return hasattr(decoding, "replay_mask") and "groundkit" in get_registry().decoding_backends.names()
