"""``groundkit score``: reward terms over completions and their ground truth."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from groundkit.errors import DataError, GroundkitError
from groundkit.records import read_records
from groundkit.rewards import RewardResult, RewardSet
from groundkit.rewards.groundtruth import GroundTruth, read_ground_truth

from .app import app
from .text import DIALECT, FIELD, FRAME, LENIENT, TYPES, split_types

SAMPLE_FIELD = "sample_id"


def score_file(
    completions: str | Path,
    data: str | Path,
    rewards: str,
    dialect: str = "groundkit",
    frame: str | None = None,
    types: list[str] | None = None,
    field: str | None = None,
    none: str = "sum",
    reading: str = "strict",
) -> tuple[RewardResult | None, list[dict], list[str]]:
    """Score a completions file against a ground-truth file: (result, per-record rows, problems).

    A completion names its ground truth by ``sample_id`` (else its own ``id``); completions
    of one sample form a group (for ``consistency``). Bad records are reported in
    ``problems`` (naming them) and skipped. ``reading="lenient"`` makes the terms (all but
    ``format``) read completions leniently; each row then lists the spans skipped.
    """
    reward_set = RewardSet.from_spec(rewards, none=none, reading=reading)
    truths: dict[str, GroundTruth] = {}
    problems: list[str] = []
    for item in read_ground_truth(data):
        if isinstance(item, DataError):
            problems.append(f"ground truth {item}")
        elif item.id in truths:
            problems.append(f"ground truth record {item.id}: duplicate id in {data} (the first is used)")
        else:
            truths[item.id] = item
    texts, matched, ids, sample_ids = [], [], [], []
    for rec in read_records(completions, field):
        if rec.error is not None:
            problems.append(str(rec.error))
            continue
        sample_id = str(rec.data.get(SAMPLE_FIELD, rec.id))
        if sample_id not in truths:
            problems.append(f"record {rec.id}: no ground truth with id {sample_id!r} in {data}")
            continue
        texts.append(rec.text or "")
        matched.append(truths[sample_id])
        ids.append(rec.id)
        sample_ids.append(sample_id)
    if not texts:
        return None, [], problems
    batch = reward_set.batch(texts, matched, dialect, frame, types, groups=sample_ids, ids=ids)
    result = reward_set.score(batch)
    problems += [f"record {rid}: term {term}: {msg}" for rid, term, msg in batch.problems]
    rows = []
    for i in range(len(texts)):
        row = result.row(i)
        row["sample_id"] = sample_ids[i]
        err = batch.parse_error(i)
        if err is not None:
            row["parse_error"] = str(err).splitlines()[0]
        trace = batch.trace(i) if reading == "lenient" else None
        if trace is not None and trace.problems:
            row["skipped"] = [p.to_dict() for p in trace.problems]
        rows.append(row)
    return result, rows, problems


def summary_table(result: RewardResult) -> Table:
    table = Table(title=f"groundkit score ({len(result.total)} completions)")
    for col, justify in (("term", "left"), ("weight", "right"), ("mean", "right"), ("None share", "right")):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for name, stats in result.summary().items():
        weight = "" if name == "total" else f"{result.weights[name]:g}"
        mean = "-" if stats["mean"] is None else f"{stats['mean']:.4f}"
        table.add_row(name, weight, mean, f"{stats['none_share']:.1%}")
    return table


@app.command("score")
def score_command(
    completions: str = typer.Argument(..., help="Completions: .jsonl records (id, completion, optional sample_id)."),
    data: Path = typer.Option(..., "--data", help="Ground truth .jsonl (id, answer, answer_type, objects, ...)."),
    rewards: str = typer.Option(
        "format,answer", "--rewards", "-r", help="Comma-separated terms, each name[(param=value, ...)][:weight], e.g. format,answer,'point_f1(max_distance=0.1):0.5'."
    ),
    dialect: str = DIALECT,
    frame: str = FRAME,
    types: str = TYPES,
    field: str = FIELD,
    none: str = typer.Option("sum", "--none", help="None terms in the total: sum (left out, as TRL) or renormalize."),
    lenient: bool = LENIENT,
    out: Path = typer.Option(None, "--out", "-o", help="Per-record JSONL to write (default: <completions>.scores.jsonl)."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON instead of a table."),
) -> None:
    """Score completions with reward terms; print each term's mean and share of None, write per-record JSON.

    Example: groundkit score completions.jsonl --data gt.jsonl --dialect groundkit --rewards 'format,answer,point_f1(max_distance=0.1):0.5'
    (--lenient: grounding and answer terms read every well-formed grounding; format stays strict)
    """
    result, rows, problems = score_file(
        completions, data, rewards, dialect, frame, split_types(types), field, none, "lenient" if lenient else "strict"
    )
    for message in problems:
        print(f"error: {message}", file=sys.stderr)
    if result is None:
        raise GroundkitError(f"no completion could be scored ({len(problems)} bad records)")
    target = out or Path(completions).with_suffix(".scores.jsonl")
    target.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    if as_json:
        typer.echo(json.dumps({"summary": result.summary(), "weights": result.weights, "skipped": len(problems), "out": str(target)}))
    else:
        Console(width=120).print(summary_table(result))
        typer.echo(f"wrote {target} ({len(rows)} records, {len(problems)} skipped or with errors)")
