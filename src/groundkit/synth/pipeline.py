"""The synthesis pipeline: distil -> extract -> ground -> derive -> align -> write.

Records go through in batches of ``batch_size``: one batched teacher call, one batched
extractor call and one batched grounder call per batch, then the batch is appended to the
store (fsynced). Every input id ends as one kept record (``data.jsonl``) or one dropped
record with its reason (``dropped.jsonl``); a restarted run skips the ids already written.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from groundkit.errors import ConfigError, DataError, GroundkitError
from groundkit.frames import ImageSize
from groundkit.images import IMAGE_ERRORS
from groundkit.interfaces.synth import ExtractionItem, Extractor, Grounder, GroundingQuery
from groundkit.rewards.groundtruth import GroundTruth, read_ground_truth
from groundkit.synth.align import Dropped, ground_trace, resolve
from groundkit.synth.config import SynthConfig, check_grounding
from groundkit.synth.distil import (
    CompletionsTeacher,
    Distilled,
    ModelTeacher,
    SimulatedTeacher,
    Source,
    Teacher,
    check_sources,
    distil,
)
from groundkit.synth.writer import SynthStore
from groundkit.text.parser import get_parser

BAD_RECORD, MISSING_IMAGE, NO_OBJECTS, GROUNDER_ERROR = "bad_record", "missing_image", "no_objects", "grounder_error"
IMAGE_TOO_LARGE, IMAGE_SIZE_MISMATCH = "image_too_large", "image_size_mismatch"
"""What PIL raises for a missing, corrupt or too large (decompression bomb) image."""


@dataclass
class SynthSummary:
    """Totals over the whole output (resumed records included)."""

    total: int
    kept: int
    dropped: dict[str, int]
    objects_per_trace: dict[str, Any]
    grounding_types: dict[str, int]
    ambiguous_phrases: int
    processed_now: int
    resumed: int
    out: str
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "extra"} | self.extra


def make_teacher(config: SynthConfig) -> Teacher:
    t = config.teacher
    if t.model is not None:
        return ModelTeacher(t.model, t.dialect, t.backbone, t.max_new_tokens, t.batch_size, t.sample, t.temperature, t.seed, t.device, t.dtype,
                            constrained=t.constrained)
    if t.completions is not None:
        return CompletionsTeacher(Path(t.completions), t.dialect, t.field)
    params = dict(t.simulate or {})
    unknown = set(params) - {"wrong", "seed"}
    if unknown:
        raise ConfigError("unknown parameter; known: wrong, seed", f"teacher.simulate.{sorted(unknown)[0]}")
    return SimulatedTeacher(float(params.get("wrong", 0.2)), int(params.get("seed", 0)), t.dialect)


def make_plugins(config: SynthConfig) -> tuple[Extractor, Grounder]:
    from groundkit.registry import get_registry

    reg = get_registry()
    return reg.extractor(config.extractor.name).with_params(**config.extractor.params), reg.grounder(config.grounder.name).with_params(**config.grounder.params)


def read_sources(config: SynthConfig) -> list[Source | DataError]:
    items = list(read_ground_truth(config.input))
    check_sources(items)
    out: list[Source | DataError] = []
    for t in items:
        if isinstance(t, DataError):
            out.append(t)
            continue
        if not t.image:
            out.append(DataError("has no image", t.id))
            continue
        image = Path(t.image)
        out.append(Source(t, image if image.is_absolute() else config.input.parent / image))
    return out[: config.limit] if config.limit else out


def _drop(src: Source | DataError, reason: str, detail: str, stage: str) -> dict[str, Any]:
    rid = src.id if isinstance(src, Source) else (src.record_id or "?")
    return {"id": rid, "reason": reason, "detail": detail, "stage": stage}


class Pipeline:
    """One configured run; :meth:`run` processes every record not in the store yet."""

    def __init__(self, config: SynthConfig, teacher: Teacher | None = None):
        self.config = config
        self.teacher = teacher or make_teacher(config)
        self.extractor, self.grounder = make_plugins(config)
        out = config.output
        self.parser = get_parser(out.dialect, out.frame)
        check_grounding(out.grounding, out.grounding_params)  # against the registry in use now
        if out.grounding != "auto" and out.grounding not in self.parser.grammar.type_names:
            raise ConfigError(f"dialect {out.dialect!r} cannot write {out.grounding!r} groundings (its types: "
                              f"{', '.join(self.parser.grammar.type_names)})", "output.grounding")
        self.provenance = {
            "teacher": self.teacher.describe(),
            "extractor": {"name": self.extractor.name, **self.extractor.params()},
            "grounder": {"name": self.grounder.name, **_plain(self.grounder.params())},
            "ambiguity": config.ambiguity, "dialect": out.dialect, "frame": self.parser.grammar.frame.name,
            "groundkit": _version(), "config": config.fingerprint(),
        }

    def process(self, sources: list[Source]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """One batch: kept rows and dropped rows."""
        kept: list[dict[str, Any]] = []
        dropped: list[dict[str, Any]] = []
        try:
            outputs = self.teacher.complete(sources)
        except DataError as exc:  # e.g. an image the model cannot open: one record at a time then
            if len(sources) == 1:
                return [], [_drop(sources[0], "teacher_error", str(exc), "distil")]
            parts = [self.process([s]) for s in sources]
            return [r for k, _ in parts for r in k], [r for _, d in parts for r in d]
        judged = distil(sources, outputs, self.teacher.dialect)
        live: list[tuple[Source, Distilled, str]] = []
        for src, out, result in zip(sources, outputs, judged):
            if isinstance(result, Distilled):
                live.append((src, result, out.text or ""))
            else:
                dropped.append(_drop(src, result[0], result[1], "distil"))
        items = [ExtractionItem(s.id, s.truth.question or "", d.thought, d.answer, s.truth) for s, d, _ in live]
        mentions = self.extractor.extract(items) if items else []
        queries, ready = [], []
        for (src, d, text), ms in zip(live, mentions):
            if not ms:
                dropped.append(_drop(src, NO_OBJECTS, "the extractor found no object mention in the trace", "extract"))
                continue
            try:
                with Image.open(src.image) as img:
                    image = img.convert("RGB")
            except IMAGE_ERRORS as exc:  # missing, corrupt, or a decompression bomb: this record only
                reason = IMAGE_TOO_LARGE if isinstance(exc, Image.DecompressionBombError) else MISSING_IMAGE
                dropped.append(_drop(src, reason, f"cannot open image {src.image}: {exc}", "ground"))
                continue
            if src.truth.image_size is not None and src.truth.image_size != image.size:
                w, h = src.truth.image_size
                detail = f"the image {src.image} is {image.size[0]}x{image.size[1]} but the record gives width/height {w}x{h}"
                dropped.append(_drop(src, IMAGE_SIZE_MISMATCH, detail, "ground"))
                continue
            queries.append(GroundingQuery(src.id, image, tuple(m.label for m in ms), src.truth))
            ready.append((src, d, text, ms))
        try:
            masks = self.grounder.ground(queries) if queries else []
        except ConfigError:
            raise
        except GroundkitError as exc:
            return kept, dropped + [_drop(s, GROUNDER_ERROR, str(exc), "ground") for s, *_ in ready]
        for (src, d, teacher_text, ms), q, cands in zip(ready, queries, masks):
            size = ImageSize(*q.image.size)
            try:
                resolved = resolve(ms, cands, self.config.ambiguity, self.config.dedupe_iou)
                out = self.config.output
                text, trace, objects = ground_trace(d.thought, d.answer, resolved, size, out.dialect, out.frame,
                                                    out.grounding, out.max_polygon_vertices, self.parser, out.grounding_params)
            except Dropped as exc:
                dropped.append(_drop(src, exc.reason, exc.detail, "align"))
                continue
            kept.append(self.row(src, size, text, trace, objects, d, teacher_text))
        return kept, dropped

    def row(self, src: Source, size: ImageSize, text: str, trace: Any, objects: list, d: Distilled, teacher_text: str) -> dict[str, Any]:
        t: GroundTruth = src.truth
        image = os.path.relpath(src.image.resolve(), Path(self.config.out).resolve())  # relative to data.jsonl
        row: dict[str, Any] = {"id": t.id, "image": image, "width": size.width, "height": size.height, "question": t.question,
                               "answer": t.answer, "answer_type": t.answer_type}
        if t.choices:
            row["choices"] = list(t.choices)
        row |= {
            "completion": text, "dialect": self.config.output.dialect, "frame": self.provenance["frame"],
            "objects": [o.to_dict() for o in objects],
            "provenance": {**self.provenance, "source": str(self.config.input), "teacher_completion": teacher_text,
                           "teacher_groundings_removed": d.removed_groundings},
        }
        return row

    def run(self, fresh: bool = False, progress: Callable[[int, int], None] | None = None) -> SynthSummary:
        self.grounder.prepare()
        store = SynthStore(self.config.out, self.config.fingerprint(), fresh)
        sources = read_sources(self.config)
        done = store.done()
        todo = [s for s in sources if (s.id if isinstance(s, Source) else s.record_id) not in done]
        resumed = len(sources) - len(todo)
        bad = [s for s in todo if isinstance(s, DataError)]
        if bad:
            store.write(dropped=[_drop(e, BAD_RECORD, str(e), "read") for e in bad])
        good = [s for s in todo if isinstance(s, Source)]
        finished = resumed + len(bad)
        if progress:
            progress(finished, len(sources))
        size = self.config.batch_size
        for start in range(0, len(good), size):
            batch = good[start : start + size]
            kept, dropped = self.process(batch)
            lost = {s.id for s in batch} - {r["id"] for r in kept} - {r["id"] for r in dropped}
            if lost:  # never silent loss: the pipeline itself is wrong if this happens
                raise DataError(f"records {sorted(lost)} came out of a batch neither kept nor dropped")
            store.write(kept, dropped)
            finished += len(batch)
            if progress:
                progress(finished, len(sources))
        summary = summarize(store, len(sources), len(sources) - resumed, resumed)
        (Path(self.config.out) / "summary.json").write_text(json.dumps(summary.to_dict(), indent=2), encoding="utf-8")
        return summary


def summarize(store: SynthStore, total: int, now: int, resumed: int) -> SynthSummary:
    kept = list(store.kept.rows.values())
    per = [len(r.get("objects", [])) for r in kept]
    types = Counter(o.get("grounding", "?") for r in kept for o in r.get("objects", []))
    ambiguous = sum(1 for r in kept for o in r.get("objects", []) if o.get("ambiguous"))
    hist = Counter(per)
    return SynthSummary(
        total=total, kept=len(kept), dropped=dict(Counter(r["reason"] for r in store.dropped.rows.values()).most_common()),
        objects_per_trace={"mean": round(sum(per) / len(per), 3) if per else 0.0, "max": max(per, default=0),
                           "histogram": {str(k): hist[k] for k in sorted(hist)}},
        grounding_types=dict(types.most_common()), ambiguous_phrases=ambiguous, processed_now=now, resumed=resumed,
        out=str(store.out),
    )


def run_synth(config: SynthConfig, fresh: bool = False, progress: Callable[[int, int], None] | None = None,
              teacher: Teacher | None = None) -> SynthSummary:
    """Run (or resume) the pipeline for ``config``; returns the summary of the whole output."""
    return Pipeline(config, teacher).run(fresh, progress)


def _plain(d: dict[str, Any]) -> dict[str, Any]:
    return {k: (v if isinstance(v, (str, int, float, bool, type(None))) else str(v)) for k, v in d.items()}


def _version() -> str:
    try:
        return importlib.metadata.version("groundkit")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - a source checkout
        return "unknown"
