"""The decoding backend interface: a composed grammar -> a logits processor for ``generate()``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from groundkit.frames import ImageSize

if TYPE_CHECKING:
    from groundkit.text.grammar import ComposedGrammar


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
