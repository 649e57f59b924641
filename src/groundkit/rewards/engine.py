"""The reward engine: reward terms (plugins), a scoring batch that parses each completion once,
and reward sets that weight terms into a total.

A term scores a whole :class:`ScoringBatch` and returns one float per completion, or None
where it does not apply (no ground truth for it, no groundings of its type, ...). A
:class:`RewardSet` reports every term's values separately and the weighted total.

None in the total: a None term is left out of the weighted sum, exactly as TRL's
``GRPOTrainer`` does (it turns None into NaN and ``nansum``\\ s), so ``groundkit score``
totals equal the rewards GRPO trains on. ``none="renormalize"`` instead rescales the weights
of the terms that do apply to the full weight. A completion for which every term is None
has total None.
"""

from __future__ import annotations

import logging
import math
import numbers
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from groundkit.errors import GroundkitError, ParseError
from groundkit.frames import ImageSize
from groundkit.interfaces.reward import RewardTerm
from groundkit.rewards.groundtruth import GroundTruth
from groundkit.rewards.spec import build_reward_terms
from groundkit.text.parser import TraceParser, get_parser
from groundkit.trace import Grounding, Trace

log = logging.getLogger(__name__)
NONE_POLICIES = ("sum", "renormalize")
#: How terms read completions: ``strict`` (the dialect's parser: one flaw and the completion has
#: no trace) or ``lenient`` (every well-formed grounding anywhere; see docs/rewards.md).
READINGS = ("strict", "lenient")


def check_reading(reading: str) -> str:
    if reading not in READINGS:
        raise GroundkitError(f"reading must be one of {', '.join(READINGS)}, got {reading!r}")
    return reading


@dataclass
class Sample:
    """One completion to score: its text, its ground truth (or why there is none) and its group.

    ``group`` identifies completions of the same prompt (GRPO's generations of one sample);
    the ``consistency`` term compares completions within a group.
    """

    text: str
    truth: GroundTruth | None = None
    truth_error: str | None = None
    group: Hashable = None
    id: str | None = None


class ScoringBatch:
    """Completions with their ground truth, parsed lazily and once per distinct text.

    ``trace(i)`` is the :class:`Trace` the terms read: with ``reading="strict"`` the parsed
    trace (None when the text does not parse), with ``reading="lenient"`` every well-formed
    grounding and the answer read leniently (skipped spans in ``trace.problems``).
    ``parse_error(i)`` and ``strict_trace(i)`` are always the strict parse's (the ``format``
    term reads those). ``scores(term)`` memoises a term's values so composite terms
    (``grounded_if_correct``) reuse what the set already computed; ``cache`` holds
    intermediates terms share (e.g. the label-masked box IoU matrix of completion ``i``).
    """

    def __init__(self, samples: Sequence[Sample], parser: TraceParser, reading: str = "strict"):
        self.samples = list(samples)
        self.parser = parser
        self.reading = check_reading(reading)
        self._parsed: dict[tuple[str, ImageSize | None], Trace | GroundkitError] = {}
        self._lenient: dict[tuple[str, ImageSize | None], Trace | GroundkitError] = {}
        self._memo: dict[Hashable, list[float | None]] = {}
        self.cache: dict[Hashable, Any] = {}
        self.problems: list[tuple[str, str, str]] = []

    def __len__(self) -> int:
        return len(self.samples)

    def record_id(self, i: int) -> str:
        s = self.samples[i]
        return s.id or (s.truth.id if s.truth is not None else None) or f"#{i}"

    def truth(self, i: int) -> GroundTruth | None:
        return self.samples[i].truth

    def _parse(self, i: int, lenient: bool = False) -> Trace | GroundkitError:
        s = self.samples[i]
        size = s.truth.image_size if s.truth is not None else None
        key = (s.text, ImageSize(*size) if size else None)
        cache = self._lenient if lenient else self._parsed
        hit = cache.get(key)
        if hit is None:
            strict = self._parsed.get(key) if lenient else None
            if isinstance(strict, Trace):  # a text that parses strictly reads the same leniently
                hit = strict
            else:
                try:
                    hit = self.parser.parse(s.text, key[1], lenient=True) if lenient else self.parser.parse(s.text, key[1])
                except GroundkitError as exc:  # ParseError, or FrameError for pixel frames without a size
                    hit = exc
            cache[key] = hit
        return hit

    def trace(self, i: int) -> Trace | None:
        """The trace the terms read (strict or lenient, per the batch's ``reading``)."""
        result = self._parse(i, self.reading == "lenient")
        return result if isinstance(result, Trace) else None

    def strict_trace(self, i: int) -> Trace | None:
        """The strict parse's trace whatever the reading (None when the text does not parse)."""
        result = self._parse(i)
        return result if isinstance(result, Trace) else None

    def groundings(self, i: int, type_name: str | None = None) -> list[Grounding]:
        """The groundings of completion ``i`` (of one type if given); empty when it does not parse. Cached."""
        key = ("groundings", i, type_name)
        if key not in self.cache:
            if type_name is None:
                trace = self.trace(i)
                self.cache[key] = trace.groundings if trace is not None else []
            else:
                self.cache[key] = [g for g in self.groundings(i) if g.type == type_name]
        return self.cache[key]

    def parse_error(self, i: int) -> GroundkitError | None:
        """The strict parse's error (whatever the reading): why the completion is not well-formed."""
        result = self._parse(i)
        return None if isinstance(result, Trace) else result

    def is_valid_prefix(self, i: int) -> bool:
        err = self.parse_error(i)
        return err is None or (isinstance(err, ParseError) and err.truncated)

    def parse_all(self) -> None:
        for i in range(len(self)):
            self._parse(i, self.reading == "lenient")

    def groups(self) -> dict[Hashable, list[int]]:
        """Indices of the completions of each group, in order."""
        out: dict[Hashable, list[int]] = {}
        for i, s in enumerate(self.samples):
            out.setdefault(s.group if s.group is not None else i, []).append(i)
        return out

    def scores(self, term: RewardTerm) -> list[float | None]:
        """The term's values for this batch, computed once (terms are hashable dataclasses)."""
        key: Hashable = term if _hashable(term) else id(term)
        if key not in self._memo:
            values = list(term.score(self))
            if len(values) != len(self):
                raise GroundkitError(f"reward term {term.name!r} returned {len(values)} values for {len(self)} completions")
            self._memo[key] = [self._checked(term, i, v) for i, v in enumerate(values)]
        return self._memo[key]

    def _checked(self, term: RewardTerm, i: int, value: Any) -> float | None:
        """A term's value as a float; NaN / infinity (which would poison a GRPO update) or a
        non-number becomes None, recorded in ``problems``."""
        if value is None:
            return None
        try:
            out = float(value)
        except (TypeError, ValueError):
            out = math.nan
        if math.isfinite(out):
            return out
        self.problems.append((self.record_id(i), term.name, f"returned {str(value)[:40]}, not a finite number; counted as None"))
        return None


def _hashable(obj: object) -> bool:
    try:
        hash(obj)
    except TypeError:
        return False
    return True


@dataclass
class RewardResult:
    """Per-term values (``values[name][i]``) and the weighted ``total[i]`` of a batch."""

    names: list[str]
    weights: dict[str, float]
    values: dict[str, list[float | None]]
    total: list[float | None]
    ids: list[str] = field(default_factory=list)

    def row(self, i: int) -> dict[str, Any]:
        return {"id": self.ids[i] if self.ids else i, "total": self.total[i], "terms": {n: self.values[n][i] for n in self.names}}

    def summary(self) -> dict[str, dict[str, float | None]]:
        """Per term (and ``total``): mean over applicable values, share of None, count."""
        out = {}
        for name, values in [*self.values.items(), ("total", self.total)]:
            present = [v for v in values if v is not None]
            out[name] = {
                "mean": sum(present) / len(present) if present else None,
                "none_share": (len(values) - len(present)) / len(values) if values else 0.0,
                "count": float(len(values)),
            }
        return out


class RewardSet:
    """Weighted reward terms. ``none`` is ``"sum"`` (None terms left out of the weighted sum,
    as TRL does) or ``"renormalize"`` (weights of the applicable terms rescaled to the full weight).
    ``reading`` is how the terms read completions: ``"strict"`` (default) or ``"lenient"``;
    the ``format`` term is strict either way."""

    def __init__(self, terms: Iterable[tuple[RewardTerm, float]], none: str = "sum", reading: str = "strict"):
        self.terms = list(terms)
        if not self.terms:
            raise GroundkitError("a reward set needs at least one term")
        for term, weight in self.terms:
            if not isinstance(term, RewardTerm):
                raise GroundkitError(f"a reward set holds (RewardTerm, weight) pairs, got {type(term).__name__} {str(term)[:40]}")
            if isinstance(weight, bool) or not isinstance(weight, numbers.Real) or not math.isfinite(weight):
                raise GroundkitError(f"reward term {term.name!r}: the weight must be a finite number, got {weight!r}")
        names = [t.name for t, _ in self.terms]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise GroundkitError(f"reward term(s) {', '.join(dup)} appear twice in the reward set")
        if none not in NONE_POLICIES:
            raise GroundkitError(f"none policy must be one of {', '.join(NONE_POLICIES)}, got {none!r}")
        self.none = none
        self.reading = check_reading(reading)

    @property
    def names(self) -> list[str]:
        return [t.name for t, _ in self.terms]

    @property
    def weights(self) -> list[float]:
        return [w for _, w in self.terms]

    @classmethod
    def from_spec(cls, spec: str | Sequence[str] | Mapping[str, Any], registry: Any = None, none: str = "sum",
                  reading: str = "strict") -> RewardSet:
        """``"format,answer,point_f1(max_distance=0.1):0.5"`` -> a set (weight 1 unless ``name:weight``;
        parameters as Python literals, checked against the term's fields). Also a list of such
        items, or a mapping ``{name: weight | {weight: w, param: value}}`` (see :mod:`groundkit.rewards.spec`)."""
        return cls(build_reward_terms(spec, registry), none, reading)

    def batch(
        self,
        completions: Sequence[str],
        truths: Sequence[GroundTruth | None] | None = None,
        dialect: str = "groundkit",
        frame: str | None = None,
        types: Sequence[str] | None = None,
        groups: Sequence[Hashable] | None = None,
        ids: Sequence[str] | None = None,
    ) -> ScoringBatch:
        """A :class:`ScoringBatch` for plain completion texts (groups default to the truth's id).

        ``truths``, ``groups`` and ``ids`` must have one item per completion; a truth is a
        :class:`GroundTruth` (build one with ``GroundTruth.from_dict``) or None.
        """
        completions = list(completions)
        truths = list(truths) if truths is not None else [None] * len(completions)
        for name, seq in (("truths", truths), ("groups", groups), ("ids", ids)):
            if seq is not None and len(seq) != len(completions):
                raise GroundkitError(f"{len(completions)} completions but {len(seq)} {name}: pass one per completion")
        for i, text in enumerate(completions):
            if not isinstance(text, str):
                raise GroundkitError(f"completions[{i}] must be text, got {type(text).__name__}")
        for i, truth in enumerate(truths):
            if truth is not None and not isinstance(truth, GroundTruth):
                raise GroundkitError(
                    f"truths[{i}] must be a GroundTruth or None, got {type(truth).__name__} (use GroundTruth.from_dict)"
                )
        samples = [
            Sample(
                text=text,
                truth=truth,
                group=groups[i] if groups is not None else (truth.id if truth is not None else None),
                id=ids[i] if ids is not None else None,
            )
            for i, (text, truth) in enumerate(zip(completions, truths, strict=True))
        ]
        return ScoringBatch(samples, get_parser(dialect, frame, types), self.reading)

    def score(self, batch: ScoringBatch) -> RewardResult:
        values = {term.name: batch.scores(term) for term, _ in self.terms}
        weights = dict(zip(self.names, self.weights))
        full = sum(abs(w) for w in self.weights)
        total: list[float | None] = []
        for i in range(len(batch)):
            present = [(weights[n], values[n][i]) for n in self.names if values[n][i] is not None]
            if not present:
                total.append(None)
                continue
            s = sum(w * v for w, v in present)  # type: ignore[operator]
            if self.none == "renormalize":
                applicable = sum(abs(w) for w, _ in present)
                s = s * full / applicable if applicable else 0.0
            total.append(s)
        return RewardResult(self.names, weights, values, total, [batch.record_id(i) for i in range(len(batch))])

    def __call__(self, completions: Sequence[str], truths: Sequence[GroundTruth | None] | None = None, **kw: Any) -> RewardResult:
        return self.score(self.batch(completions, truths, **kw))

