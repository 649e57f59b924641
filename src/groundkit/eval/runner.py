"""``evaluate``: benchmarks + completions (or a model) -> per-record results, summary, HTML report.

Grounding metrics are reported over the valid completions that use the grounding type the
metric compares (points for ``point_*``, boxes for ``box_*``, masks for ``mask_iou``), so
points and boxes are compared on what each grounded; invalid completions count in format
validity and accuracy (as wrong). With ``reading="lenient"`` (``--lenient``) format validity
stays strict while the answer and grounding metrics read every well-formed grounding (rows
list the spans skipped).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from groundkit.errors import DataError, GroundkitError
from groundkit.eval.benchmarks import load_benchmark, parse_bench_spec
from groundkit.eval.generate import generate_or_skip
from groundkit.eval.store import Key, ResultStore
from groundkit.records import read_records
from groundkit.registry import get_registry
from groundkit.rewards import RewardSet
from groundkit.rewards.groundtruth import GroundTruth
from groundkit.rewards.spec import parse_reward_spec

METRICS = ("format", "answer", "point_in_mask", "point_f1", "box_iou_hungarian", "mask_iou")
GROUPS = {"point": "points", "box": "boxes", "mask": "masks"}


@dataclass
class EvalConfig:
    """What a run evaluates and how; stored as ``run.json`` so a resumed run can check it matches."""

    benches: list[str]
    dialect: str = "groundkit"
    frame: str | None = None
    metrics: list[str] = field(default_factory=lambda: list(METRICS))
    completions: str | None = None
    model: str | None = None
    constrained: bool = True
    limit: int | None = None
    batch_size: int = 16
    max_new_tokens: int = 512
    reading: str = "strict"  # how metrics read completions; format validity is strict either way
    types: list[str] | None = None  # grounding types the model's grammar allows (None: all the dialect supports)
    instruction: str = "full"  # the prompt's system message, as the model was trained: full | none

    @property
    def metric_names(self) -> list[str]:
        """The metrics' term names (``metrics`` may give parameters: ``point_f1(max_distance=0.1)``)."""
        return [item.name for item in parse_reward_spec(self.metrics)]

    def same_run(self, other: dict[str, Any]) -> list[str]:
        """Settings that differ from a stored run (those that change scores)."""
        keys = ("benches", "dialect", "frame", "metrics", "model", "constrained", "reading", "types", "instruction")
        stored = {"instruction": "full", **other}  # runs stored before the option had the full instruction
        return [k for k in keys if stored.get(k) != asdict(self)[k]]


@dataclass
class EvalRun:
    """What :func:`evaluate` returns: the rows (finished records), the summary and where files went."""

    rows: list[dict[str, Any]]
    summary: dict[str, Any]
    problems: list[str]
    out: Path
    scored_now: int
    resumed: int

    @property
    def report(self) -> Path:
        return self.out / "report.html"


def _grounding_group(trace: Any) -> str:
    if trace is None:
        return "invalid"
    kinds = sorted({GROUPS.get(g.type, g.type) for g in trace.groundings})
    return "none" if not kinds else kinds[0] if len(kinds) == 1 else "mixed"


def load_completions(path: str | Path, field: str | None = None) -> tuple[dict[Key | str, str], list[str]]:
    """Completions by record id (or by (bench, id) when rows carry ``bench``), and problems."""
    out: dict[Key | str, str] = {}
    problems = []
    for rec in read_records(path, field):
        if rec.error is not None or rec.text is None:
            problems.append(f"completion {rec.error or rec.id}")
            continue
        key: Key | str = (str(rec.data["bench"]), rec.id) if rec.data.get("bench") else rec.id
        if key in out:
            problems.append(f"completion record {rec.id}: duplicate id (the first is used)")
            continue
        out[key] = rec.text
    return out, problems


def _row(bench: str, truth: GroundTruth, text: str, batch: Any, i: int, values: dict[str, list[float | None]]) -> dict[str, Any]:
    trace = batch.trace(i)
    used = {GROUPS.get(g.type, g.type) for g in trace.groundings} if trace is not None else set()
    reg = get_registry()
    metrics: dict[str, float | None] = {}
    for name, vals in values.items():
        kind = reg.reward_term(name).grounding_type
        applies = kind is None or (trace is not None and GROUPS.get(kind, kind) in used)
        metrics[name] = vals[i] if applies else None
    err = batch.parse_error(i)
    answer = metrics.get("answer")
    status = "invalid" if trace is None else "unscored" if answer is None else "correct" if answer >= 1.0 else "wrong"
    return {
        "bench": bench, "id": truth.id, "task": truth.extra.get("task") or ("counting" if truth.answer_type == "count" else "other"),
        "answer_type": truth.answer_type, "question": truth.question, "truth": truth.answer, "choices": list(truth.choices),
        "image": truth.image, "width": truth.width, "height": truth.height, "completion": text,
        "predicted": trace.answer if trace is not None else None, "grounding": _grounding_group(trace), "status": status,
        "parse_error": str(err).splitlines()[0] if err is not None else None, "metrics": metrics,
        "trace": trace.to_dict() if trace is not None else None,
        "skipped": [p.to_dict() for p in trace.problems] if trace is not None else [],
    }


def evaluate(
    config: EvalConfig,
    out: str | Path,
    field: str | None = None,
    fresh: bool = False,
    gallery: int = 6,
    progress: Callable[[int, int], None] | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> EvalRun:
    """Evaluate ``config.benches`` (``NAME:PATH``) and write ``results.jsonl``, ``results.json``
    and ``report.html`` under ``out``. Finished records of an earlier run are not redone.

    ``progress(done, total)`` is called as records finish; ``on_batch(n)`` after each
    written batch (tests use it to interrupt a run).
    """
    if (config.completions is None) == (config.model is None):
        raise GroundkitError("give exactly one of --completions FILE or --model SPEC")
    root = Path(out)
    root.mkdir(parents=True, exist_ok=True)
    run_file, results = root / "run.json", root / "results.jsonl"
    if fresh:
        results.unlink(missing_ok=True)
    elif run_file.exists() and results.exists():
        differs = config.same_run(json.loads(run_file.read_text(encoding="utf-8")))
        if differs:
            raise GroundkitError(f"{root} holds a run with other {', '.join(differs)}; pass --fresh to start over or use another --out")
    run_file.write_text(json.dumps(asdict(config), indent=2), encoding="utf-8")
    store = ResultStore(results)
    resumed = len(store.rows)
    reward_set = RewardSet.from_spec(config.metrics, reading=config.reading)
    texts, problems = load_completions(config.completions, field) if config.completions else ({}, [])
    todo: list[tuple[str, GroundTruth]] = []
    keys: list[Key] = []
    for spec in config.benches:
        bench = parse_bench_spec(spec)
        name = bench.name
        for item in load_benchmark(name, bench.path, root / "media" / name, config.limit, split=bench.split, images=bench.images):
            if isinstance(item, DataError):
                problems.append(f"{name}: {item}")
                continue
            keys.append((name, item.id))
            if (name, item.id) in store:
                continue
            if config.completions and (name, item.id) not in texts and item.id not in texts:
                problems.append(f"{name}: record {item.id}: no completion in {config.completions}")
                continue
            todo.append((name, item))
    total, done = len(todo), 0
    for start in range(0, total, config.batch_size):
        chunk = todo[start : start + config.batch_size]
        done += len(chunk)
        if config.model is not None:  # a record whose image cannot be used is reported and left out
            made = generate_or_skip(config.model, [t for _, t in chunk], config.dialect, config.frame, config.constrained,
                                    config.max_new_tokens, config.types, config.instruction)
            problems += [f"{b}: {m}" for (b, _), m in zip(chunk, made) if isinstance(m, DataError)]
            chunk = [c for c, m in zip(chunk, made) if not isinstance(m, DataError)]
            generated = [m for m in made if not isinstance(m, DataError)]
        else:
            generated = [texts.get((b, t.id), texts.get(t.id, "")) for b, t in chunk]
        if chunk:
            batch = reward_set.batch(generated, [t for _, t in chunk], config.dialect, config.frame, ids=[t.id for _, t in chunk])
            values = reward_set.score(batch).values
            problems += [f"record {rid}: metric {term}: {msg}" for rid, term, msg in batch.problems]
            store.append(_row(b, t, generated[i], batch, i, values) for i, (b, t) in enumerate(chunk))
        if progress is not None:
            progress(done, total)
        if on_batch is not None:
            on_batch(done)
    from groundkit.eval.report import write_report
    from groundkit.eval.summary import summarize

    wanted = dict.fromkeys(keys)
    rows = [store.rows[k] for k in wanted if k in store.rows]
    summary = summarize(rows, config.metric_names)
    (root / "results.json").write_text(
        json.dumps({"config": asdict(config), "summary": summary, "problems": problems, "records": len(rows),
                    "results": "results.jsonl", "report": "report.html"}, indent=2),
        encoding="utf-8",
    )
    write_report(root, rows, summary, problems, config, gallery)
    return EvalRun(rows, summary, problems, root, total, resumed)


def bench_specs(benches: Sequence[str]) -> list[str]:
    """Validate ``NAME:PATH[:SPLIT]`` specs early (a clear error before any work); a name given twice is refused
    (its records would share ids)."""
    seen: set[str] = set()
    for spec in benches:
        name = parse_bench_spec(spec).name
        get_registry().benchmark_adapter(name)
        if name in seen:
            raise GroundkitError(f"benchmark {name} is given twice (its records would share ids): evaluate one split per --out")
        seen.add(name)
    return list(benches)
