"""Distillation: a teacher writes a reasoning trace per question; traces with a correct
answer (the ``answer`` reward term) are kept, every other record gets a drop reason.

Teachers:

- :class:`ModelTeacher`: any backbone plugin (``tiny:<backbone>`` or a local checkpoint),
  decoding under the dialect's grammar by default (``constrained``), batched through
  :func:`groundkit.backbones.generation.generate`;
- :class:`CompletionsTeacher`: completions written earlier (JSONL ``{"id", "completion"}``);
- :class:`SimulatedTeacher`: deterministic text-only reasoning written from the ground
  truth with a share ``wrong`` of wrong answers (tests, demos; no model needed).
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from groundkit.errors import DataError, GroundkitError, ParseError
from groundkit.rewards.groundtruth import GroundTruth
from groundkit.text.parser import get_parser
from groundkit.trace import Text, Trace

# drop reasons of this stage
UNPARSEABLE = "unparseable"
NO_COMPLETION = "no_completion"
TEACHER_ERROR = "teacher_error"
NO_REFERENCE = "no_reference_answer"
WRONG_ANSWER = "wrong_answer"


@dataclass
class Source:
    """One input record: its ground truth and the resolved image path."""

    truth: GroundTruth
    image: Path

    @property
    def id(self) -> str:
        return self.truth.id


@dataclass
class TeacherOutput:
    text: str | None
    error: str | None = None


class Teacher:
    """Writes one completion per source record (batched); ``describe()`` is provenance."""

    dialect: str = "groundkit"

    def complete(self, sources: Sequence[Source]) -> list[TeacherOutput]:
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        return {"kind": type(self).__name__}


@dataclass
class ModelTeacher(Teacher):
    """A backbone model answering in ``dialect``.

    ``constrained`` (the default) decodes under the dialect's grammar, so every completion that
    ends parses (only a wrong answer or ``max_new_tokens`` running out can drop it);
    ``constrained=False`` lets the model write freely (a strong teacher that knows the format)."""

    model: str
    dialect: str = "groundkit"
    backbone: str | None = None
    max_new_tokens: int = 256
    batch_size: int = 8
    sample: bool = False
    temperature: float = 1.0
    seed: int = 0
    device: str | None = None
    dtype: str | None = None
    constrained: bool = True
    _loaded: Any = field(default=None, init=False, repr=False)

    def complete(self, sources: Sequence[Source]) -> list[TeacherOutput]:
        from groundkit.backbones import load_model
        from groundkit.backbones.generation import GenerationRequest, SamplingConfig, generate

        if self._loaded is None:
            self._loaded = load_model(self.model, backbone=self.backbone, dtype=self.dtype, device=self.device, seed=self.seed)
        requests = [GenerationRequest(s.image, s.truth.question or "", s.id) for s in sources]
        sampling = SamplingConfig(self.sample, self.temperature, seed=self.seed)
        results = generate(self._loaded, requests, dialect=self.dialect, constrained=self.constrained, max_new_tokens=self.max_new_tokens,
                           sampling=sampling, batch_size=self.batch_size)
        return [TeacherOutput(r.text) for r in results]

    def describe(self) -> dict[str, Any]:
        return {"kind": "model", "model": self.model, "dialect": self.dialect, "constrained": self.constrained,
                "max_new_tokens": self.max_new_tokens, "sample": self.sample, "temperature": self.temperature, "seed": self.seed}


@dataclass
class CompletionsTeacher(Teacher):
    """Completions written earlier: a JSONL of ``{"id", "completion"}`` (or another text field)."""

    path: Path
    dialect: str = "groundkit"
    field: str | None = None
    _by_id: dict[str, str] | None = None

    def _load(self) -> dict[str, str]:
        if self._by_id is None:
            from groundkit.records import read_records

            self._by_id = {}
            for rec in read_records(self.path, self.field):
                if rec.error is None and rec.text is not None:
                    self._by_id.setdefault(rec.id, rec.text)
        return self._by_id

    def complete(self, sources: Sequence[Source]) -> list[TeacherOutput]:
        by_id = self._load()
        return [TeacherOutput(by_id.get(s.id), None if s.id in by_id else f"no completion for id {s.id!r} in {self.path}") for s in sources]

    def describe(self) -> dict[str, Any]:
        return {"kind": "completions", "path": str(self.path), "dialect": self.dialect}


@dataclass
class SimulatedTeacher(Teacher):
    """Text-only reasoning from the ground truth; a share ``wrong`` of answers is wrong."""

    wrong: float = 0.2
    seed: int = 0
    dialect: str = "groundkit"

    def complete(self, sources: Sequence[Source]) -> list[TeacherOutput]:
        return [TeacherOutput(self.write(s.truth)) for s in sources]

    def write(self, truth: GroundTruth) -> str:
        from groundkit.text.formatter import format_trace

        rng = np.random.default_rng([self.seed, zlib.crc32(truth.id.encode())])
        mistake = bool(rng.random() < self.wrong)
        labels = list(dict.fromkeys(o.label for o in truth.objects or ()))
        answer = truth.answer or ""
        if truth.answer_type == "count":
            target = str(truth.extra.get("target") or (labels[0] if labels else "object"))
            n = int(answer) + (1 if mistake else 0) if answer.isdigit() else 0
            think = f"I look for every {target} in the image and count them one by one. That makes {n}."
            answer = str(n)
        else:
            named = ", ".join(f"the {label}" for label in labels) or "the objects"
            think = f"I find {named} and compare where they are. That settles the question."
            if mistake:
                answer = _wrong(truth, rng)
        return format_trace(Trace((Text(think),), answer), self.dialect)

    def describe(self) -> dict[str, Any]:
        return {"kind": "simulated", "wrong": self.wrong, "seed": self.seed, "dialect": self.dialect}


def _wrong(truth: GroundTruth, rng: np.random.Generator) -> str:
    answer = (truth.answer or "").strip()
    if truth.answer_type == "yes_no":
        return "no" if answer.lower() in ("yes", "true") else "yes"
    letters = [chr(65 + k) for k in range(len(truth.choices)) if chr(65 + k) != answer.upper()]
    return letters[int(rng.integers(len(letters)))] if letters else "unsure"


@dataclass
class Distilled:
    """A kept teacher trace: the thought (teacher groundings removed) and the answer."""

    trace: Trace
    thought: str
    answer: str | None
    removed_groundings: int = 0


def thought_of(trace: Trace) -> tuple[str, int]:
    """The thought as plain text: the teacher's own groundings are removed (they are redone)."""
    parts = [s.text if isinstance(s, Text) else " " for s in trace.think]
    text = re.sub(r"[ \t]{2,}", " ", "".join(parts))
    text = re.sub(r" ([,.;:!?])", r"\1", text).strip()
    return text, len(trace.groundings)


def distil(sources: Sequence[Source], outputs: Sequence[TeacherOutput], dialect: str) -> list[Distilled | tuple[str, str]]:
    """Judge each teacher output: a :class:`Distilled` when its answer is right, else
    ``(reason, detail)``. Correctness is the registered ``answer`` reward term."""
    from groundkit.registry import get_registry
    from groundkit.rewards import Sample, ScoringBatch

    parser = get_parser(dialect)
    term = get_registry().reward_term("answer")
    out: list[Distilled | tuple[str, str]] = [("", "")] * len(sources)
    samples, where = [], []
    for k, (src, o) in enumerate(zip(sources, outputs)):
        if o.error is not None or o.text is None:
            out[k] = (NO_COMPLETION if o.text is None else TEACHER_ERROR, o.error or "the teacher wrote nothing")
            continue
        samples.append(Sample(o.text, src.truth, id=src.id))
        where.append(k)
    if not samples:
        return out
    batch = ScoringBatch(samples, parser)
    try:
        scores = term.score(batch)
    except GroundkitError as exc:  # a term failing for the whole batch: every record says why
        return [(TEACHER_ERROR, str(exc)) if isinstance(o, tuple) and not o[0] else o for o in out]
    for k, i, score in zip(where, range(len(samples)), scores):
        trace = batch.trace(i)
        if trace is None:
            err = batch.parse_error(i)
            detail = str(err.with_record(samples[i].id) if isinstance(err, ParseError) else err)
            out[k] = (UNPARSEABLE, detail.splitlines()[0])
        elif score is None:
            out[k] = (NO_REFERENCE, "the record has no reference answer to check the teacher against")
        elif score < 1.0:
            out[k] = (WRONG_ANSWER, f"teacher answered {trace.answer!r}, reference {samples[i].truth.answer!r}")  # type: ignore[union-attr]
        else:
            thought, removed = thought_of(trace)
            out[k] = Distilled(trace, thought, trace.answer, removed)
    return out


def check_sources(truths: Sequence[GroundTruth | DataError]) -> None:
    """Ids must be unique: the output is keyed by id (a duplicate is an error naming it)."""
    seen: set[str] = set()
    for t in truths:
        if isinstance(t, GroundTruth):
            if t.id in seen:
                raise DataError("duplicate id in the input (records are keyed by id)", t.id)
            seen.add(t.id)
