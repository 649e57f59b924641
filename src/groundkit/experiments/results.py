"""Results of the counting experiment: per-arm metrics with bootstrap CIs, baselines, curves."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from groundkit.experiments.plans import CountingPlan
from groundkit.experiments.stats import bootstrap_ci, chance_baseline, majority_baseline, paired_difference_ci


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def eval_rows(evaluation: dict[str, Any]) -> list[dict[str, Any]]:
    path = Path(evaluation["results"])
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def curves(folder: Path) -> dict[str, list[list[float]]]:
    """Training curves from an arm's log history: SFT loss, GRPO rewards, image reliance (step, value)."""
    path = folder / "log_history.json"
    if not path.exists():
        return {}
    out: dict[str, list[list[float]]] = {}
    for entry in json.loads(path.read_text(encoding="utf-8")):
        step = entry.get("step")
        for key, value in entry.items():
            if key in ("step", "epoch") or not isinstance(value, (int, float)) or isinstance(value, bool):
                continue
            if key in ("loss", "reward", "reward_std", "groundkit/image_reliance") or key.startswith("rewards/") and key.endswith("/mean"):
                out.setdefault(key, []).append([float(step), float(value)])
    return out


def summarize_arm(out: Path, plan: CountingPlan, arm: str, evaluation: dict[str, Any], seed: int) -> dict[str, Any]:
    """Accuracy (with its bootstrap CI), in / beyond the training range, format validity, point F1 and
    point-in-mask (over completions with points; 0 for none), per-count accuracy, curves."""
    rows = eval_rows(evaluation)
    correct = [1.0 if r["status"] == "correct" else 0.0 for r in rows]
    in_range = [c for c, r in zip(correct, rows) if _count(r) is not None and _count(r) <= plan.train_max_count]
    beyond = [c for c, r in zip(correct, rows) if _count(r) is not None and _count(r) > plan.train_max_count]
    by_count: dict[str, list[float]] = {}
    for c, r in zip(correct, rows):
        by_count.setdefault(str(r["truth"]), []).append(c)
    f1 = [r["metrics"].get("point_f1") for r in rows]
    pim = [r["metrics"].get("point_in_mask") for r in rows]
    curve = curves(out / "arms" / arm)
    reliance = curve.get("groundkit/image_reliance", [])
    return {
        "records": len(rows),
        "accuracy": _mean(correct),
        "accuracy_ci": list(bootstrap_ci(correct, seed)),
        "accuracy_in_range": _mean(in_range),
        "accuracy_in_range_ci": list(bootstrap_ci(in_range, seed)),
        "accuracy_beyond_range": _mean(beyond),
        "accuracy_beyond_range_ci": list(bootstrap_ci(beyond, seed)),
        "format_valid": _mean([0.0 if r["status"] == "invalid" else 1.0 for r in rows]),
        "point_f1": _mean([v if v is not None else 0.0 for v in f1]),
        "point_f1_where_pointed": _mean([v for v in f1 if v is not None]),
        "point_in_mask": _mean([v for v in pim if v is not None]),
        "completions_with_points": _mean([1.0 if v is not None else 0.0 for v in f1]),
        "accuracy_by_count": {k: _mean(v) for k, v in sorted(by_count.items(), key=lambda kv: int(kv[0]) if kv[0].isdigit() else 99)},
        "image_reliance_final": reliance[-1][1] if reliance else None,
        "curves": curve,
        "report": evaluation.get("report"),
        "correct": correct,
        "point_f1_per_record": [v if v is not None else 0.0 for v in f1],
        "ids": [r["id"] for r in rows],
    }


def _count(row: dict[str, Any]) -> int | None:
    try:
        return int(row["truth"])
    except (TypeError, ValueError):
        return None


def write_results(out: Path, plan: CountingPlan, arms: dict[str, dict[str, Any]], traces: dict[str, Any],
                  minutes: float, seed: int, warmup: dict[str, list[list[float]]] | None = None) -> dict[str, Any]:
    """``results.json`` (+ ``report.html``): baselines, arms, paired comparisons (accuracy; point F1
    where both arms point), the shared warm-up's curves."""
    from groundkit.experiments.report import write_report

    test_answers = [str(json.loads(line)["answer"]) for line in
                    (out / "scenes" / "test" / "scenes.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]
    majority_answer, majority = majority_baseline(traces["answers"], test_answers)
    comparisons = {}
    for a, b in (("grounded", "direct"), ("grounded+grpo", "grounded")):
        if arms[a]["ids"] == arms[b]["ids"]:
            diff, ci = paired_difference_ci(arms[a]["correct"], arms[b]["correct"], seed)
            comparisons[f"{a} - {b}"] = {"accuracy_difference": diff, "ci": list(ci)}
            if b != "direct":  # both arms point
                diff, ci = paired_difference_ci(arms[a]["point_f1_per_record"], arms[b]["point_f1_per_record"], seed)
                comparisons[f"{a} - {b}"].update(point_f1_difference=diff, point_f1_ci=list(ci))
    public = {arm: {k: v for k, v in m.items() if k not in ("correct", "ids", "point_f1_per_record")} for arm, m in arms.items()}
    results = {
        "experiment": "counting", "scale": plan.scale, "seed": seed, "minutes": round(minutes, 2),
        "baselines": {"majority": majority, "majority_answer": majority_answer,
                      "chance": chance_baseline(traces["answers"], test_answers)},
        "arms": public, "comparisons": comparisons,
        "warmup": None if warmup is None else {
            "steps": plan.warmup_steps, "curves": warmup,
            "image_reliance_final": (warmup.get("groundkit/image_reliance") or [[None, None]])[-1][1]},
        "plan": {k: v for k, v in plan.to_dict().items() if not isinstance(v, float) or math.isfinite(v)},
        "test_records": len(test_answers),
    }
    (out / "results.json").write_text(json.dumps(results, indent=2, default=float), encoding="utf-8")
    write_report(out, results)
    return results
