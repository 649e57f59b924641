"""Aggregate per-record eval rows: accuracy, format validity and grounding quality per group
(overall, benchmark, task, grounding type, benchmark x task)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from rich.table import Table

SHORT = {"answer": "accuracy", "format": "format valid", "point_in_mask": "pt-in-mask", "point_f1": "point F1",
         "box_iou_hungarian": "box IoU", "box_iou_greedy": "box IoU (greedy)", "mask_iou": "mask IoU"}


def _stats(rows: Sequence[dict[str, Any]], metrics: Sequence[str]) -> dict[str, Any]:
    out: dict[str, Any] = {"n": len(rows)}
    for status in ("correct", "wrong", "invalid", "unscored"):
        out[status] = sum(r["status"] == status for r in rows)
    for name in metrics:
        values = [r["metrics"].get(name) for r in rows]
        present = [v for v in values if v is not None]
        out[name] = sum(present) / len(present) if present else None
        out[f"{name}_n"] = len(present)
    return out


def _grouped(rows: Iterable[dict[str, Any]], key: Any, metrics: Sequence[str]) -> dict[str, Any]:
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault(key(r), []).append(r)
    return {k: _stats(v, metrics) for k, v in sorted(groups.items())}


def summarize(rows: Sequence[dict[str, Any]], metrics: Sequence[str]) -> dict[str, Any]:
    """The ``summary`` of ``results.json``."""
    return {
        "overall": _stats(rows, metrics),
        "by_benchmark": _grouped(rows, lambda r: r["bench"], metrics),
        "by_task": _grouped(rows, lambda r: r["task"], metrics),
        "by_grounding": _grouped(rows, lambda r: r["grounding"], metrics),
        "by_benchmark_task": _grouped(rows, lambda r: f"{r['bench']} / {r['task']}", metrics),
    }


def fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def summary_table(summary: dict[str, Any], metrics: Sequence[str], title: str = "groundkit eval") -> Table:
    """One row per group: overall, each benchmark x task, each grounding type."""
    table = Table(title=title)
    table.add_column("group")
    for col in ("n", "correct", "wrong", "invalid"):
        table.add_column(col, justify="right")
    for name in metrics:
        table.add_column(SHORT.get(name, name), justify="right")
    sections = [("all", summary["overall"])]
    sections += list(summary["by_benchmark_task"].items())
    sections += [(f"grounding: {k}", v) for k, v in summary["by_grounding"].items()]
    for label, s in sections:
        table.add_row(label, str(s["n"]), str(s["correct"]), str(s["wrong"]), str(s["invalid"]), *(fmt(s[m]) for m in metrics))
    return table
