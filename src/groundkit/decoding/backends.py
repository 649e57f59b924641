"""Decoding backends: what turns a composed grammar into a logits processor for ``generate()``.

groundkit's own engine is the built-in backend ``groundkit``; thin adapters for engines
groundkit does not own (llguidance, xgrammar) register through the same hook.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from groundkit.frames import ImageSize
from groundkit.interfaces.decoding import DecodingBackend
from groundkit.text.grammar import ComposedGrammar


class GroundkitBackend(DecodingBackend):
    """groundkit's own engine: token tables + per-row value bounds, ordering and budget."""

    name = "groundkit"
    description = "groundkit's token automaton: per-row frame bounds, x1<x2, budget-aware closing"
    enforces_values = True

    def logits_processor(self, tokenizer: Any, grammar: ComposedGrammar, image_sizes: Sequence[ImageSize | None] | None = None,
                         max_new_tokens: int | None = None, num_return_sequences: int = 1) -> Any:
        from groundkit.decoding.processor import make_processor

        return make_processor(tokenizer, grammar, image_sizes, max_new_tokens, num_return_sequences=num_return_sequences)
