"""Plugin contracts of the synthesis pipeline: extractors (trace -> object mentions) and
grounders (phrases + image -> candidate masks), plus the small records they exchange.

Both are registered through hooks (``register_extractors``, ``register_grounders``); the
registered object is a prototype whose dataclass fields are its parameters, configured per
run with :meth:`with_params` (an unknown parameter is a :class:`ConfigError` naming it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields, is_dataclass, replace
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from groundkit.errors import ConfigError

if TYPE_CHECKING:
    from groundkit.rewards.groundtruth import GroundTruth


@dataclass(frozen=True)
class Mention:
    """A phrase in the thought text that names a visual object.

    ``start``/``end`` are character offsets in the thought (groundings go right after
    ``end``); ``label`` is the canonical name the grounder is asked for and the groundings
    carry; ``plural`` mentions (``every red circle``, ``the mugs``) may take several masks.
    """

    phrase: str
    label: str
    start: int
    end: int
    plural: bool = False


@dataclass
class ExtractionItem:
    """What an extractor sees of one kept record: the question, the teacher's thought
    (groundings removed), its answer and the ground truth (objects may be None)."""

    id: str
    question: str
    thought: str
    answer: str | None
    truth: GroundTruth


@dataclass
class GroundingQuery:
    """One image and the phrases to segment in it (``truth`` for oracle-style grounders)."""

    id: str
    image: Any  # PIL.Image.Image (RGB)
    phrases: tuple[str, ...]
    truth: GroundTruth | None = None


@dataclass
class MaskCandidate:
    """One mask a grounder proposes for a phrase: (height, width) booleans at the original
    image size, with a confidence ``score`` in [0, 1]."""

    mask: np.ndarray
    score: float = 1.0

    @property
    def area(self) -> int:
        return int(self.mask.sum())


class _Configurable:
    """Dataclass plugins: fields are parameters; ``with_params`` copies with others."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    config_section: ClassVar[str] = ""

    def with_params(self, **params: Any) -> Any:
        """A copy with other parameters; an unknown one is a :class:`ConfigError` naming its key."""
        known = {f.name for f in fields(self) if f.init and not f.name.startswith("_")} if is_dataclass(self) else set()
        for key in params:
            if key not in known:
                shown = ", ".join(sorted(known)) or "(none)"
                raise ConfigError(f"{self.name!r} has no parameter {key!r}; parameters: {shown}", f"{self.config_section}.{key}")
        return replace(self, **params) if params else self  # type: ignore[type-var]

    def params(self) -> dict[str, Any]:
        """The parameters as plain values (provenance)."""
        if not is_dataclass(self):
            return {}
        return {f.name: getattr(self, f.name) for f in fields(self) if f.init and not f.name.startswith("_")}


class Extractor(_Configurable):
    """Base class of extractor plugins: find the object mentions a trace relies on.

    Override :meth:`extract` (batched) or :meth:`extract_one`. Mentions must not overlap;
    each is grounded once, right after its ``end`` offset.
    """

    config_section: ClassVar[str] = "extractor"

    def extract(self, items: Sequence[ExtractionItem]) -> list[list[Mention]]:
        return [self.extract_one(item) for item in items]

    def extract_one(self, item: ExtractionItem) -> list[Mention]:
        raise NotImplementedError(f"extractor {self.name!r} implements neither extract() nor extract_one()")


class Grounder(_Configurable):
    """Base class of grounder plugins: phrases + image -> candidate masks per phrase.

    :meth:`ground` is batched: one list per query, holding one list of
    :class:`MaskCandidate` per phrase (empty when nothing was found). Several candidates for
    one phrase are normal (plural phrases, or ambiguity the pipeline resolves).
    """

    config_section: ClassVar[str] = "grounder"

    def prepare(self) -> None:
        """Load models / check parameters before the first batch (errors name the config key)."""

    def ground(self, queries: Sequence[GroundingQuery]) -> list[list[list[MaskCandidate]]]:
        raise NotImplementedError(f"grounder {self.name!r} does not implement ground()")
