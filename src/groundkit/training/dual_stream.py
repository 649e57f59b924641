"""iVGR dual-stream GRPO: every sample is rolled out with a grounded prompt and a textual prompt.

- The grounded stream is rewarded with ``rewards`` (answer + format + grounding terms).
- The textual stream is rewarded with ``dual_stream.textual_rewards``: ``format`` (here: the
  completion parses and holds no groundings), ``answer``, and ``consistency``: the
  consistency judge of the registered ``consistency`` term applied to (textual completion,
  best grounded completion of the same sample). As iVGR does, the best grounded completion
  of each sample is cached across steps (best = highest answer score, then highest mean of
  the judge term's grounding terms), so a textual rollout is judged even when its sample's
  grounded rollouts in this batch are all wrong or unparseable.

The trainer expands each group of ``num_generations`` rows of a sample into a grounded group
and a textual group (TRL normalises advantages per group, so streams never mix). Each
process must therefore hold whole groups: ``per_device_train_batch_size *
steps_per_generation`` divisible by ``num_generations``. The cache is per process.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from groundkit.errors import GroundkitError
from groundkit.registry import get_registry
from groundkit.rewards import RewardTerm, ScoringBatch
from groundkit.rewards.trl import BatchCache, GroundkitReward
from groundkit.text.grammar import ComposedGrammar
from groundkit.trace import Trace
from groundkit.training.config import ConfigError, TrainConfig, reward_terms
from groundkit.training.grpo import _grpo_trainer_class, build_grpo

STREAM = "groundkit_stream"
GROUNDED, TEXTUAL = "grounded", "textual"


@dataclass(frozen=True)
class TextualFormat(RewardTerm):
    """1.0 when the completion parses and has no groundings (the textual stream's format)."""

    name = "textual_format"
    description = "parses under the dialect and holds no groundings"

    def score_one(self, batch: ScoringBatch, i: int) -> float | None:
        trace = batch.trace(i)
        return float(trace is not None and not trace.groundings)


class StreamReward:
    """A reward function applied to the rows of one stream only (None for the other stream's rows)."""

    def __init__(self, inner: Callable[..., list[float | None]], stream: str, name: str):
        self.inner, self.stream, self.__name__ = inner, stream, name
        self._key: Any = None
        self._subset: Any = None

    def __call__(self, prompts=None, completions=(), completion_ids=None, **columns: Any) -> list[float | None]:
        streams = columns.get(STREAM) or [GROUNDED] * len(completions)
        rows = [i for i, s in enumerate(streams) if s == self.stream]
        n = len(completions)

        def pick(v: Any) -> Any:
            return [v[i] for i in rows] if isinstance(v, Sequence) and not isinstance(v, str) and len(v) == n else v

        sub_completions = [completions[i] for i in rows]
        values = self.inner(prompts=pick(prompts), completions=sub_completions,
                            completion_ids=pick(completion_ids), **{k: pick(v) for k, v in columns.items()})
        out: list[float | None] = [None] * n
        for i, v in zip(rows, values):
            out[i] = v
        return out


class CachedConsistency:
    """iVGR's consistency reward for textual rows, against the cached best grounded completion per sample."""

    __name__ = "consistency"

    def __init__(self, grammar: ComposedGrammar, term: RewardTerm | str = "consistency"):
        self.term = get_registry().reward_term(term) if isinstance(term, str) else term
        self.cache = BatchCache(grammar.dialect.name, grammar.frame.name, [t.name for t in grammar.types])
        self.best: dict[str, tuple[tuple[float, float], Trace]] = {}

    def __getstate__(self) -> dict[str, Any]:
        return {"term": self.term, "cache": self.cache, "best": {}}

    def __call__(self, prompts=None, completions=(), completion_ids=None, log_metric=None, **columns: Any) -> list[float | None]:
        reg = get_registry()
        term = self.term
        batch = self.cache.batch(prompts, completions, columns)
        streams = columns.get(STREAM) or [GROUNDED] * len(completions)
        ids = columns.get("sample_id") or [batch.record_id(i) for i in range(len(batch))]
        correct = batch.scores(reg.reward_term(term.answer))
        inner = [batch.scores(reg.reward_term(name)) for name in term.grounding]
        for i, stream in enumerate(streams):
            trace = batch.trace(i)
            if stream != GROUNDED or trace is None or not trace.groundings:
                continue
            present = [v[i] for v in inner if v[i] is not None]
            score = (correct[i] or 0.0, sum(present) / len(present) if present else 0.0)
            if ids[i] not in self.best or score > self.best[ids[i]][0]:
                self.best[ids[i]] = (score, trace)
        out: list[float | None] = [None] * len(batch)
        pairs, slots = [], []
        for i, stream in enumerate(streams):
            trace = batch.trace(i)
            if stream == TEXTUAL and trace is not None and not trace.groundings and ids[i] in self.best:
                pairs.append((trace, self.best[ids[i]][1], batch.truth(i)))
                slots.append(i)
        if pairs:
            for i, value in zip(slots, term.judge.judge(pairs), strict=True):
                out[i] = float(value)
        if log_metric is not None:
            log_metric("groundkit/consistency_cached_samples", float(len(self.best)))
        return out


def dual_stream_rewards(cfg: TrainConfig, grammar: ComposedGrammar) -> tuple[list[Any], list[float]]:
    """Reward functions and weights: the grounded terms (``rewards/<term>``), then the textual
    ones (``rewards/textual/<term>``)."""
    types = [t.name for t in grammar.types]
    grounded_cache = BatchCache(grammar.dialect.name, grammar.frame.name, types, reading=cfg.reading)
    textual_cache = BatchCache(grammar.dialect.name, grammar.frame.name, types, reading=cfg.reading)
    funcs: list[Any] = []
    weights: list[float] = []
    for term, weight in reward_terms(cfg.rewards):
        funcs.append(StreamReward(GroundkitReward(term, cache=grounded_cache), GROUNDED, term.name))
        weights.append(weight)
    textual = cfg.dual_stream.textual_rewards
    for term, weight in reward_terms(textual, "dual_stream.textual_rewards"):
        name = term.name
        if name == "consistency" or getattr(term, "judge", None) is not None:
            func: Any = CachedConsistency(grammar, term)  # sees both streams, scores textual rows
            func.__name__ = f"textual/{name}"
        else:
            if name == "format" and isinstance(textual.get(name), Mapping):
                raise ConfigError("dual_stream.textual_rewards.format", "the textual stream's format term takes no parameters")
            term = TextualFormat() if name == "format" else term
            func = StreamReward(GroundkitReward(term, cache=textual_cache), TEXTUAL, f"textual/{name}")
        funcs.append(func)
        weights.append(weight)
    return funcs, weights


def _dual_trainer_class() -> type:
    base = _grpo_trainer_class()

    class DualStreamGRPOTrainer(base):  # type: ignore[misc, valid-type]
        """Expands each sample's group into a grounded group and a textual group before rollout."""

        def _generate_and_score_completions(self, inputs):
            g = self.num_generations if self.model.training else self.num_generations_eval
            if len(inputs) % g:
                raise GroundkitError(f"dual stream: a batch of {len(inputs)} rows is not whole groups of {g}")
            expanded = []
            for start in range(0, len(inputs), g):
                group = inputs[start:start + g]
                if len({str(x.get("sample_id")) for x in group}) != 1:
                    raise GroundkitError(
                        "dual stream: a group of generations spans several samples; make "
                        "per_device_train_batch_size * steps_per_generation a multiple of num_generations")
                expanded += [{**x, STREAM: GROUNDED} for x in group]
                expanded += [{**x, "prompt": x["textual_prompt"], STREAM: TEXTUAL} for x in group]
            return super()._generate_and_score_completions(expanded)

    return DualStreamGRPOTrainer


def build_dual_stream(cfg: TrainConfig) -> Any:
    """A dual-stream GRPO run (see the module docstring), not yet trained."""
    if not cfg.dual_stream.textual_rewards:
        raise ConfigError("dual_stream.textual_rewards", "the textual stream needs at least one reward term")
    return build_grpo(cfg, trainer_class=_dual_trainer_class(), rewards=dual_stream_rewards)
