"""Constrained decoding: the composed grammar compiled into a token automaton, applied as a
logits processor (per-row frames and value bounds), replayable for training, exportable for
engines groundkit does not own. torch is imported only when an engine is built."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from groundkit.decoding.backends import DecodingBackend, GroundkitBackend
from groundkit.errors import GroundkitError
from groundkit.frames import ImageSize
from groundkit.text.grammar import ComposedGrammar

DEFAULT_BACKEND = "groundkit"


def grounded_logits_processor(
    tokenizer: Any,
    grammar: ComposedGrammar,
    image_sizes: Sequence[ImageSize | None] | None = None,
    max_new_tokens: int | None = None,
    backend: str = DEFAULT_BACKEND,
    num_return_sequences: int = 1,
) -> Any:
    """A ``transformers`` logits processor enforcing ``grammar`` for one generation batch
    (row ``i`` belongs to ``image_sizes[i // num_return_sequences]``), from the named
    decoding backend. The built-in backend's processor offers ``generate_kwargs()`` and
    ``decode(sequences)``: ``model.generate(**inputs, **proc.generate_kwargs())``."""
    from groundkit.registry import get_registry

    chosen = get_registry().decoding_backend(backend)
    reason = chosen.unavailable()
    if reason is not None:
        raise GroundkitError(f"decoding backend {backend!r} cannot run here: {reason}")
    if num_return_sequences != 1:  # only backends that take it (older third-party ones need not)
        return chosen.logits_processor(tokenizer, grammar, image_sizes=image_sizes, max_new_tokens=max_new_tokens,
                                       num_return_sequences=num_return_sequences)
    return chosen.logits_processor(tokenizer, grammar, image_sizes=image_sizes, max_new_tokens=max_new_tokens)


def replay_mask(tokenizer: Any, grammar: ComposedGrammar, logits: Any, completion_ids: Any,
                image_sizes: Sequence[ImageSize | None] | None = None, max_new_tokens: int | None = None,
                completion_mask: Any = None) -> Any:
    """``logits`` (B, T, V) of the completion positions with the masks generation applied,
    recomputed by a scan over ``completion_ids`` (B, T); see :class:`GroundedLogitsProcessor`."""
    from groundkit.decoding.processor import replay_mask as _replay

    return _replay(tokenizer, grammar, logits, completion_ids, image_sizes, max_new_tokens, completion_mask)


def __getattr__(name: str) -> Any:  # torch-backed names load on first use
    if name in ("DecodingWarning", "GroundedLogitsProcessor", "compile_constraint", "make_processor"):
        from groundkit.decoding import processor

        return getattr(processor, name)
    raise AttributeError(name)


__all__ = ["DEFAULT_BACKEND", "DecodingBackend", "DecodingWarning", "GroundedLogitsProcessor", "GroundkitBackend", "compile_constraint",
           "grounded_logits_processor", "make_processor", "replay_mask"]
