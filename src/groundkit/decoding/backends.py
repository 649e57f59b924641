"""Decoding backends: what turns a composed grammar into a logits processor for ``generate()``.

groundkit's own engine is the built-in backend ``groundkit``; thin adapters for engines
groundkit does not own (llguidance, xgrammar) register through the same hook.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from groundkit.frames import ImageSize
from groundkit.grammar import ComposedGrammar


class DecodingBackend:
    """Base class of decoding backends (register instances with ``register_decoding_backends``).

    ``logits_processor`` returns a ``transformers.LogitsProcessor`` that constrains one
    generation batch: row ``i`` of the batch belongs to an image of size ``image_sizes[i]``
    (needed by per-image frames) and at most ``max_new_tokens`` are generated.
    ``unavailable()`` says why the backend cannot run here (a missing optional package), or None.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    #: What the backend guarantees beyond well-formed text (e.g. per-row bounds, x1<x2).
    enforces_values: ClassVar[bool] = False

    def unavailable(self) -> str | None:
        return None

    def logits_processor(
        self,
        tokenizer: Any,
        grammar: ComposedGrammar,
        image_sizes: Sequence[ImageSize | None] | None = None,
        max_new_tokens: int | None = None,
    ) -> Any:
        raise NotImplementedError


class GroundkitBackend(DecodingBackend):
    """groundkit's own engine: token tables + per-row value bounds, ordering and budget."""

    name = "groundkit"
    description = "groundkit's token automaton: per-row frame bounds, x1<x2, budget-aware closing"
    enforces_values = True

    def logits_processor(self, tokenizer: Any, grammar: ComposedGrammar, image_sizes: Sequence[ImageSize | None] | None = None,
                         max_new_tokens: int | None = None) -> Any:
        from groundkit.decoding.processor import make_processor

        return make_processor(tokenizer, grammar, image_sizes, max_new_tokens)
