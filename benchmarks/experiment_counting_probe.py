"""Choosing the counting experiment's settings without touching its test split: one arm of the CPU
plan, trained with some settings changed, evaluated on a *validation* split (train-distribution
scenes from another seed, never the test split's).

    python benchmarks/experiment_counting_probe.py NAME [--arm grounded] [--set sft_steps=1500 ...]
        [--easy-first STEPS] [--grpo-from CHECKPOINT] [--work runs/probes]

``--set`` overrides plan fields (``sft_lr=0.002``, ``size.vision_layers=1``); ``--easy-first N``
trains N steps on scenes with at most two counted objects first (a curriculum); ``--grpo-from``
runs the plan's GRPO stage from that checkpoint instead of SFT; ``--eval-only`` evaluates a checkpoint. Appends one JSON line per probe
(validation accuracy, point F1, point in mask, image reliance, seconds) to
``benchmarks/results/experiment_counting_probes.jsonl``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from groundkit.experiments import counting as C
from groundkit.experiments.plans import PLANS, CountingPlan
from groundkit.experiments.stages import StageRunner

RESULTS = Path(__file__).resolve().parent / "results" / "experiment_counting_probes.jsonl"
VALIDATION_SEED_OFFSET = 2_000_003  # the test split uses seed + 1_000_003


def with_settings(plan: CountingPlan, items: list[str]) -> CountingPlan:
    for item in items:
        key, _, raw = item.partition("=")
        value = json.loads(raw) if raw[:1] in "0123456789-[{tf" else raw
        if key.startswith("size."):
            plan = replace(plan, size=replace(plan.size, **{key[5:]: value}))
        else:
            plan = replace(plan, **{key: value})
    return plan


def data(work: Path, plan: CountingPlan, seed: int, easy: bool = False) -> tuple[dict[str, Any], Path]:
    """Scenes, traces and a validation split (cached under ``work``)."""
    from groundkit.scenes import generate_scenes

    if easy:
        plan = replace(plan, train_max_count=2, train_scenes=plan.train_scenes // 2)
        seed += 77
    root = work / f"data-{plan.image_side}-{plan.train_max_count}"
    stages = StageRunner(root)
    settings = {"plan": C._scene_settings(plan), "seed": seed}
    stages.run("scenes", settings, lambda: C.make_scenes(root / "scenes", plan, seed), outputs=root / "scenes")
    stages.run("validation", settings, lambda: generate_scenes(root / "validation", 120, seed + VALIDATION_SEED_OFFSET,
                                                                 plan.scenes("train")), outputs=root / "validation")
    traces = stages.run("traces", settings, lambda: C.make_traces(root, plan), outputs=root / "traces")
    return traces, root / "validation"


def validate(plan: CountingPlan, checkpoint: str, validation: Path, out: Path) -> dict[str, Any]:
    from groundkit.eval import EvalConfig, evaluate

    cfg = EvalConfig([f"scenes:{validation}"], dialect=C.DIALECT, frame=C.FRAME, model=checkpoint, types=C.TYPES,
                     metrics=["format", "answer", "point_in_mask", "point_f1"], batch_size=plan.eval_batch,
                     max_new_tokens=plan.max_new_tokens, instruction=plan.instruction)
    run = evaluate(cfg, out, fresh=True, gallery=0)

    def mean(metric: str) -> float | None:
        values = [r["metrics"][metric] for r in run.rows if (r.get("metrics") or {}).get(metric) is not None]
        return round(statistics.mean(values), 3) if values else None

    return {"accuracy": mean("answer"), "point_f1": mean("point_f1"), "point_in_mask": mean("point_in_mask"),
            "format_valid": mean("format"), "records": len(run.rows)}


def _relative(path: str) -> str:
    """A path as recorded: relative to the working directory when under it (no machine paths in results)."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return Path(path).name


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("name")
    ap.add_argument("--arm", default="grounded", choices=["direct", "grounded", "grounded+grpo"],
                    help="the arm to train (direct, grounded), or the label of an --eval-only checkpoint")
    ap.add_argument("--set", dest="settings", action="append", default=[])
    ap.add_argument("--easy-first", type=int, default=0)
    ap.add_argument("--warmup", type=int, default=0, help="steps of the shared colour warm-up before the arm")
    ap.add_argument("--grpo-from", default=None)
    ap.add_argument("--eval-only", default=None, help="only evaluate this checkpoint on the validation split")
    ap.add_argument("--work", type=Path, default=Path("runs/probes"))
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if args.arm == "grounded+grpo" and not args.eval_only:
        ap.error("--arm grounded+grpo labels an --eval-only checkpoint; train it with --grpo-from")
    plan = with_settings(PLANS["cpu"], args.settings)
    traces, validation = data(args.work, plan, args.seed)
    out = args.work / args.name
    start = time.monotonic()
    if args.eval_only:
        checkpoint, log = args.eval_only, None
    elif args.grpo_from:
        checkpoint = C.train_arm_grpo(out, plan, args.grpo_from, traces, args.seed)["checkpoint"]
        log = out / "arms" / "grounded+grpo" / "log_history.json"
    else:
        base = StageRunner(args.work).run(
            f"model-{args.name}", {"size": plan.to_dict()["size"], "vocab": plan.vocab_size, "seed": args.seed},
            lambda: C.build_base(args.work / f"model-{args.name}", plan, traces, args.seed))["path"]
        if args.warmup:
            warm = C.make_warmup(Path(traces["grounded"]).parent.parent)
            base = C.train_arm_sft(out / "warmup", replace(plan, sft_steps=args.warmup), base, warm, "warmup",
                                   args.seed)["checkpoint"]
        if args.easy_first:
            easy, _ = data(args.work, plan, args.seed, easy=True)
            base = C.train_arm_sft(out / "easy", replace(plan, sft_steps=args.easy_first), base, easy, args.arm,
                                   args.seed)["checkpoint"]
        checkpoint = C.train_arm_sft(out, plan, base, traces, args.arm, args.seed)["checkpoint"]
        log = out / "arms" / args.arm / "log_history.json"
    seconds = time.monotonic() - start
    history = json.loads(log.read_text(encoding="utf-8")) if log else []
    reliance = [[e["step"], round(e["groundkit/image_reliance"], 3)] for e in history if "groundkit/image_reliance" in e]
    row = {"name": args.name, "arm": "grounded+grpo" if args.grpo_from else args.arm, "eval_only": bool(args.eval_only), "settings": args.settings,
           "easy_first": args.easy_first, "warmup": args.warmup, "seconds": round(seconds), "validation": validate(plan, checkpoint, validation,
                                                                                             out / "validation"),
           "image_reliance_final": reliance[-1][1] if reliance else None,
           "checkpoint": _relative(checkpoint)}
    print(json.dumps(row))
    RESULTS.parent.mkdir(exist_ok=True)
    with RESULTS.open("a", encoding="utf-8") as f:
        f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
