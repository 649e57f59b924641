"""Reward terms as TRL reward functions (``GRPOTrainer(reward_funcs=...)``).

TRL calls each reward function as ``f(prompts=..., completions=..., completion_ids=...,
<dataset columns>=..., trainer_state=..., log_metric=..., log_extra=...)`` and takes one
float (or None: "does not apply") per completion. The callables here are picklable class
instances with ``__name__`` (TRL logs ``rewards/<__name__>``). Functions built together share
one per-batch cache, so every completion is parsed once per batch, not once per term, and
composite terms reuse the values the set already computed.

Ground truth comes from the dataset columns: either one ``ground_truth`` column (a dict or
a JSON string per row, the :mod:`groundkit.rewards.groundtruth` schema) or the schema's fields as
flat columns (``answer``, ``answer_type``, ``objects``, ...). A PIL ``image`` / ``images``
column supplies the image size when ``width`` / ``height`` are absent. A bad record is
logged once (naming it) and its terms return None; training never stops on it.
"""

from __future__ import annotations

import json
import logging
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any

from groundkit.errors import DataError, GroundkitError
from groundkit.registry import get_registry
from groundkit.rewards import RewardSet, RewardTerm, Sample, ScoringBatch
from groundkit.rewards.engine import check_reading
from groundkit.rewards.groundtruth import KNOWN_FIELDS, GroundTruth
from groundkit.rewards.spec import configure_term, parse_reward_item
from groundkit.text.parser import get_parser

log = logging.getLogger(__name__)
GROUND_TRUTH_COLUMN = "ground_truth"
_TRL_EXTRAS = ("trainer_state", "log_metric", "log_extra", "environments")


def completion_text(completion: Any) -> str:
    """The text of a plain completion (str) or a conversational one (assistant messages, str or parts)."""
    if isinstance(completion, str):
        return completion
    if completion is not None and not isinstance(completion, (Mapping, Sequence)):
        raise GroundkitError(f"a completion must be text or a list of messages, got {type(completion).__name__}")
    messages = [completion] if isinstance(completion, Mapping) else list(completion or ())
    parts: list[str] = []
    for m in messages:
        if not isinstance(m, Mapping) or m.get("role", "assistant") != "assistant":
            continue
        content = m.get("content")
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, Sequence):
            parts += [p.get("text", "") for p in content if isinstance(p, Mapping) and p.get("type", "text") == "text"]
    return "".join(parts)


class _TruthCache:
    """Ground truth parsed once per distinct JSON record (LRU, across batches)."""

    def __init__(self, size: int = 4096):
        self.size = size
        self.items: OrderedDict[str, GroundTruth | DataError] = OrderedDict()

    def get(self, key: str, build: Callable[[], GroundTruth]) -> GroundTruth | DataError:
        hit = self.items.get(key)
        if hit is None:
            try:
                hit = build()
            except DataError as exc:
                hit = exc
            self.items[key] = hit
            if len(self.items) > self.size:
                self.items.popitem(last=False)
        else:
            self.items.move_to_end(key)
        return hit


def _image_size(value: Any) -> tuple[int, int] | None:
    """(width, height) of a PIL image, or of the first of a list of them."""
    if isinstance(value, (list, tuple)) and value:
        value = value[0]
    size = getattr(value, "size", None)
    return (int(size[0]), int(size[1])) if isinstance(size, tuple) and len(size) == 2 else None


def _row_record(columns: Mapping[str, Sequence[Any]], i: int, column: str) -> Mapping[str, Any] | str | DataError | None:
    """Row ``i``'s ground-truth record: the ``column`` value, or the schema's flat columns."""
    if column in columns:
        value = columns[column][i]
        if isinstance(value, (str, Mapping)) or value is None:
            return value
        return DataError(f"column {column!r} must hold a dict or JSON text, got {type(value).__name__}", f"row {i}")
    row = {k: columns[k][i] for k in KNOWN_FIELDS if k in columns and k != "image"}
    if not ({"answer", "objects"} & row.keys()):
        return None
    row = {k: v for k, v in row.items() if v is not None}
    if "width" not in row:
        size = _image_size(columns.get("image", columns.get("images", [None] * (i + 1)))[i])
        if size:
            row["width"], row["height"] = size
    return row


def truths_from_columns(
    n: int, columns: Mapping[str, Sequence[Any]], column: str = GROUND_TRUTH_COLUMN, cache: _TruthCache | None = None
) -> list[GroundTruth | DataError | None]:
    """Ground truth per row from TRL's dataset columns (None where a row has none)."""
    cache = cache or _TruthCache()
    check_column_lengths(n, columns, column)
    out: list[GroundTruth | DataError | None] = []
    for i in range(n):
        record = _row_record(columns, i, column)
        default_id = f"row {i}"
        if record is None or isinstance(record, DataError):
            out.append(record)
            continue
        if isinstance(record, str):
            truth = cache.get(record, lambda r=record, rid=default_id: GroundTruth.from_json(r, rid))
        else:
            key = json.dumps(record, sort_keys=True, default=str)
            truth = cache.get(key, lambda r=record, rid=default_id: GroundTruth.from_dict(r, rid))
        out.append(_check_image_size(truth, columns, i))
    return out


def check_column_lengths(n: int, columns: Mapping[str, Any], column: str = GROUND_TRUTH_COLUMN) -> None:
    """A :class:`GroundkitError` when a ground-truth column (``column``, the schema's flat fields,
    ``image`` / ``images``) does not hold exactly one value per completion: with TRL every
    column does, so a mismatch is a calling mistake that would otherwise make every grounding term None."""
    for name in (column, *sorted(KNOWN_FIELDS), "images"):
        value = columns.get(name)
        if value is None:
            continue
        if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Sequence):
            raise GroundkitError(f"column {name!r} must hold one value per completion, got a single {type(value).__name__}")
        if len(value) != n:
            raise GroundkitError(f"column {name!r} has {len(value)} values for {n} completions; pass one per completion")


def _check_image_size(truth: GroundTruth | DataError, columns: Mapping[str, Sequence[Any]], i: int) -> GroundTruth | DataError:
    """The truth, or a :class:`DataError` when the row's image is not the size the ground truth gives."""
    if isinstance(truth, DataError) or truth.image_size is None:
        return truth
    images = columns.get("image", columns.get("images"))
    size = _image_size(images[i]) if images is not None else None
    if size is not None and size != truth.image_size:
        w, h = truth.image_size
        return DataError(f"the image is {size[0]}x{size[1]} but the ground truth gives width/height {w}x{h}", truth.id or f"row {i}")
    return truth


class BatchCache:
    """Shares one :class:`ScoringBatch` among the reward functions TRL calls for one batch.

    TRL hands every reward function the same ``completions`` list object within a step, so
    the batch is keyed by that object's identity. The cache is not pickled.
    """

    def __init__(self, dialect: str = "groundkit", frame: str | None = None, types: Sequence[str] | None = None,
                 column: str = GROUND_TRUTH_COLUMN, reading: str = "strict"):
        self.dialect, self.frame, self.types, self.column = dialect, frame, tuple(types) if types else None, column
        self.reading = check_reading(reading)
        self._reset()

    def _reset(self) -> None:
        self._key: Any = None
        self._batch: ScoringBatch | None = None
        self._truths = _TruthCache()
        self._warned: set[str] = set()

    def __getstate__(self) -> dict[str, Any]:
        return {"dialect": self.dialect, "frame": self.frame, "types": self.types, "column": self.column, "reading": self.reading}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._reset()

    def batch(self, prompts: Sequence[Any] | None, completions: Sequence[Any], columns: Mapping[str, Any]) -> ScoringBatch:
        if self._batch is not None and self._key is completions:
            return self._batch
        n = len(completions)
        check_column_lengths(n, columns, self.column)
        data = {k: v for k, v in columns.items() if k not in _TRL_EXTRAS and isinstance(v, Sequence) and len(v) == n}
        samples = []
        for i, (completion, truth) in enumerate(zip(completions, truths_from_columns(n, data, self.column, self._truths))):
            error = None
            if isinstance(truth, DataError):
                error, truth = str(truth), None
                if error not in self._warned:
                    self._warned.add(error)
                    # lone surrogates from JSON escapes would break UTF-8 log handlers: escape them
                    log.warning("groundkit rewards: skipping ground truth: %s",
                                error.encode("utf-8", "backslashreplace").decode("utf-8"))
            prompt: Hashable = str(prompts[i]) if prompts is not None else None
            group = truth.id if truth is not None and truth.id else prompt
            samples.append(Sample(completion_text(completion), truth, error, group, truth.id if truth is not None else None))
        self._key, self._batch = completions, ScoringBatch(samples, get_parser(self.dialect, self.frame, self.types), self.reading)
        return self._batch


def _term(item: str) -> RewardTerm:
    """A term from one spec item, ``point_f1`` or ``point_f1(max_distance=0.1)`` (a weight is not allowed)."""
    parsed = parse_reward_item(item)
    if ":" in item.rpartition(")")[2]:
        raise GroundkitError(f"reward function {item!r}: one term takes no weight (weights go to GRPOConfig.reward_weights)")
    return configure_term(get_registry().reward_term(parsed.name), parsed.params)


class GroundkitReward:
    """One reward term as a TRL reward function; returns the term's values (None where it does not apply).
    ``term`` is a :class:`RewardTerm` or its spec, e.g. ``"point_f1(max_distance=0.1)"``."""

    def __init__(self, term: RewardTerm | str, dialect: str = "groundkit", frame: str | None = None,
                 types: Sequence[str] | None = None, cache: BatchCache | None = None, reading: str = "strict"):
        self.term = _term(term) if isinstance(term, str) else term
        self.cache = cache or BatchCache(dialect, frame, types, reading=reading)
        self.__name__ = self.term.name

    def __call__(self, prompts: Sequence[Any] | None = None, completions: Sequence[Any] = (),
                 completion_ids: Sequence[Sequence[int]] | None = None, **columns: Any) -> list[float | None]:
        return list(self.cache.batch(prompts, completions, columns).scores(self.term))

    def __repr__(self) -> str:
        return f"GroundkitReward({self.term!r}, dialect={self.cache.dialect!r})"


class GroundkitRewardSet:
    """A whole :class:`RewardSet` as one TRL reward function returning the weighted total;
    each term's batch mean and share of None go to TRL's ``log_metric`` (``groundkit/<term>``)."""

    def __init__(self, rewards: RewardSet | str | Sequence[str] | Mapping[str, Any], dialect: str = "groundkit", frame: str | None = None,
                 types: Sequence[str] | None = None, name: str = "groundkit", reading: str | None = None):
        self.rewards = rewards if isinstance(rewards, RewardSet) else RewardSet.from_spec(rewards, reading=reading or "strict")
        self.cache = BatchCache(dialect, frame, types, reading=reading or self.rewards.reading)
        self.__name__ = name

    def __call__(self, prompts: Sequence[Any] | None = None, completions: Sequence[Any] = (),
                 completion_ids: Sequence[Sequence[int]] | None = None, log_metric: Callable[[str, float], None] | None = None,
                 **columns: Any) -> list[float | None]:
        result = self.rewards.score(self.cache.batch(prompts, completions, columns))
        if log_metric is not None:
            for name, stats in result.summary().items():
                if name != "total" and stats["mean"] is not None:
                    log_metric(f"groundkit/{name}", stats["mean"])
                log_metric(f"groundkit/{name}_none", stats["none_share"])  # type: ignore[arg-type]
        return result.total


def trl_reward_funcs(spec: str | Sequence[str] | Mapping[str, Any] | RewardSet, dialect: str = "groundkit", frame: str | None = None,
                     types: Sequence[str] | None = None, reading: str | None = None) -> tuple[list[GroundkitReward], list[float]]:
    """Reward functions for ``GRPOTrainer(reward_funcs=...)`` and their weights for
    ``GRPOConfig(reward_weights=...)``; they share one per-batch parse cache. ``reading``
    (``strict``/``lenient``; default: the reward set's) is how the terms read completions.

    Example::

        funcs, weights = trl_reward_funcs("format,answer,point_f1(max_distance=0.1):0.5", dialect="groundkit")
        GRPOTrainer(model, reward_funcs=funcs, args=GRPOConfig(reward_weights=weights, ...), ...)
    """
    rewards = spec if isinstance(spec, RewardSet) else RewardSet.from_spec(spec, reading=reading or "strict")
    cache = BatchCache(dialect, frame, types, reading=reading or rewards.reading)
    return [GroundkitReward(term, cache=cache) for term, _ in rewards.terms], rewards.weights
