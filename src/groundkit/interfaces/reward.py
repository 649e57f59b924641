"""The reward term interface: a batched scoring function, one float (or None) per completion."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any, ClassVar

from groundkit.errors import GroundkitError

if TYPE_CHECKING:
    from groundkit.rewards.engine import ScoringBatch


class RewardTerm:
    """Base class of reward terms. Subclasses are small frozen dataclasses (their fields are
    the term's parameters, so a term pickles and compares by value) and set ``name``.

    ``columns`` names the ground-truth fields the term reads (``answer``, ``answer_type``,
    ``objects``, ``choices``); an empty tuple means the term needs only the completion.
    Override :meth:`score` for a batched implementation, or :meth:`score_one` for a
    per-completion one (the default :meth:`score` loops over it and turns a
    :class:`GroundkitError` on one sample into None, recorded in ``batch.problems``).
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    columns: ClassVar[tuple[str, ...]] = ()
    grounding_type: ClassVar[str | None] = None  # set by terms that score one grounding type

    def score(self, batch: ScoringBatch) -> list[float | None]:
        out: list[float | None] = []
        for i in range(len(batch)):
            try:
                out.append(self.score_one(batch, i))
            except GroundkitError as exc:
                batch.problems.append((batch.record_id(i), self.name, str(exc)))
                out.append(None)
        return out

    def score_one(self, batch: ScoringBatch, i: int) -> float | None:
        raise NotImplementedError(f"reward term {self.name!r} implements neither score() nor score_one()")

    def with_params(self, **params: Any) -> RewardTerm:
        """A copy with other parameters (dataclass fields), e.g. ``term.with_params(max_distance=0.1)``."""
        try:
            return replace(self, **params)  # type: ignore[type-var]
        except TypeError as exc:
            raise GroundkitError(f"reward term {self.name!r}: {exc}") from None
