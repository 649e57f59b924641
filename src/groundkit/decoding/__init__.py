"""Constrained decoding: the composed grammar compiled into a token automaton, applied as a
logits processor (per-row frames and value bounds), replayable for training, exportable for
engines groundkit does not own. torch is imported only when an engine is built."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from groundkit.decoding.backends import DecodingBackend
from groundkit.errors import GroundkitError
from groundkit.frames import ImageSize
from groundkit.grammar import ComposedGrammar

DEFAULT_BACKEND = "groundkit"


def grounded_logits_processor(
    tokenizer: Any,
    grammar: ComposedGrammar,
    image_sizes: Sequence[ImageSize | None] | None = None,
    max_new_tokens: int | None = None,
    backend: str = DEFAULT_BACKEND,
) -> Any:
    """A ``transformers`` logits processor enforcing ``grammar`` for one generation batch
    (row ``i`` belongs to ``image_sizes[i]``), from the named decoding backend."""
    from groundkit.registry import get_registry

    chosen = get_registry().decoding_backend(backend)
    reason = chosen.unavailable()
    if reason is not None:
        raise GroundkitError(f"decoding backend {backend!r} cannot run here: {reason}")
    return chosen.logits_processor(tokenizer, grammar, image_sizes=image_sizes, max_new_tokens=max_new_tokens)


__all__ = ["DEFAULT_BACKEND", "DecodingBackend", "grounded_logits_processor"]
