"""Choosing the counting experiment's settings without touching its test split: one arm of the CPU
plan, trained with some settings changed, evaluated on a *validation* split (train-distribution
scenes from another seed, never the test split's).

    python benchmarks/experiment_counting_probe.py NAME [--arm grounded] [--set sft_steps=1500 ...]
        [--easy-first STEPS] [--grpo-from CHECKPOINT] [--work runs/probes]

``--set`` overrides plan fields (``sft_lr=0.002``, ``size.vision_layers=1``); ``--easy-first N``
trains N steps on scenes with at most two counted objects first (a curriculum); ``--grpo-from``
runs the plan's GRPO stage from that checkpoint instead of SFT; ``--eval-only`` evaluates a checkpoint;
``--validation N`` sizes the validation split (GRPO's effects are small: 400); ``--paired-with NAME``
adds per-scene differences from another probe with paired bootstrap CIs. Appends one JSON line per probe
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


def data(work: Path, plan: CountingPlan, seed: int, easy: bool = False,
         validation_scenes: int = 120) -> tuple[dict[str, Any], Path]:
    """Scenes, traces and a validation split of ``validation_scenes`` (cached under ``work``)."""
    from groundkit.scenes import generate_scenes

    if easy:
        plan = replace(plan, train_max_count=2, train_scenes=plan.train_scenes // 2)
        seed += 77
    root = work / f"data-{plan.image_side}-{plan.train_max_count}"
    stages = StageRunner(root)
    settings = {"plan": C._scene_settings(plan), "seed": seed}
    stages.run("scenes", settings, lambda: C.make_scenes(root / "scenes", plan, seed), outputs=root / "scenes")
    # the 120-scene split keeps its folder (earlier probes used it); larger splits get their own
    name = "validation" if validation_scenes == 120 else f"validation-{validation_scenes}"
    stages.run(name, {**settings, "scenes": validation_scenes},
               lambda: generate_scenes(root / name, validation_scenes, seed + VALIDATION_SEED_OFFSET, plan.scenes("train")),
               outputs=root / name)
    traces = stages.run("traces", settings, lambda: C.make_traces(root, plan), outputs=root / "traces")
    return traces, root / name


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


def shuffled_rewards(cfg: Any, grammar: Any) -> tuple[list[Any], list[float]]:
    """The plan's reward terms with every batch's rewards permuted across its rollouts (one permutation
    for all terms): the batch's mean reward is kept, its link to the rollouts is gone. GRPO with these
    is optimisation noise alone, the control that tells a policy gradient's signal from its noise."""
    import random

    from groundkit.training.grpo import reward_functions

    funcs, weights = reward_functions(cfg, grammar)
    rng, calls = random.Random(0), [0]
    order: list[list[int]] = [[]]  # the current batch's permutation

    def shuffle(func: Any) -> Any:
        def shuffled(*args: Any, **kwargs: Any) -> list[Any]:
            values = func(*args, **kwargs)
            if calls[0] % len(funcs) == 0:  # TRL calls every term once per batch, in order
                order[0] = rng.sample(range(len(values)), len(values))
            calls[0] += 1
            return [values[i] for i in order[0]]

        shuffled.__name__ = func.__name__
        return shuffled

    return [shuffle(f) for f in funcs], weights


def train_grpo_control(out: Path, plan: CountingPlan, start: str, traces: dict[str, Any], seed: int) -> str:
    """The plan's GRPO stage with :func:`shuffled_rewards`."""
    from groundkit.training.common import finish
    from groundkit.training.config import load_config
    from groundkit.training.grpo import build_grpo

    cfg = load_config(C.grpo_config(out, plan, start, traces, seed), "grpo")
    run = build_grpo(cfg, rewards=shuffled_rewards)
    finish(run.trainer, cfg)
    return C._save_run(run, out / "arms" / "grounded+grpo", cfg.lora.enabled)


def paired_with(work: Path, name: str, reference: str) -> dict[str, Any]:
    """Per-scene differences of this probe's validation metrics from ``reference``'s (a probe on the
    same validation split), with paired bootstrap CIs: small effects need them."""
    from groundkit.experiments.stats import paired_difference_ci

    def rows(probe: str) -> dict[str, dict[str, Any]]:
        lines = (work / probe / "validation" / "results.jsonl").read_text(encoding="utf-8").splitlines()
        return {r["id"]: r.get("metrics") or {} for r in map(json.loads, lines)}

    mine, theirs = rows(name), rows(reference)
    if set(mine) != set(theirs):
        raise SystemExit(f"--paired-with {reference}: its validation split is not this probe's")
    ids = sorted(mine)
    out: dict[str, Any] = {"reference": reference}
    for metric in ("answer", "point_f1"):
        diff, (low, high) = paired_difference_ci([mine[i].get(metric) or 0.0 for i in ids],
                                                 [theirs[i].get(metric) or 0.0 for i in ids])
        out[metric] = [round(diff, 3), round(low, 3), round(high, 3)]
    return out


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
    ap.add_argument("--validation", type=int, default=120, help="validation scenes (GRPO probes need more: small effects)")
    ap.add_argument("--shuffled-rewards", action="store_true",
                    help="with --grpo-from: the control, GRPO with each batch's rewards permuted (no signal)")
    ap.add_argument("--paired-with", default=None,
                    help="a probe on the same validation split: record per-scene differences from it with CIs")
    args = ap.parse_args()
    if args.arm == "grounded+grpo" and not args.eval_only:
        ap.error("--arm grounded+grpo labels an --eval-only checkpoint; train it with --grpo-from")
    plan = with_settings(PLANS["cpu"], args.settings)
    traces, validation = data(args.work, plan, args.seed, validation_scenes=args.validation)
    out = args.work / args.name
    start = time.monotonic()
    if args.eval_only:
        checkpoint, log = args.eval_only, None
    elif args.grpo_from and args.shuffled_rewards:
        checkpoint = train_grpo_control(out, plan, args.grpo_from, traces, args.seed)
        log = out / "arms" / "grounded+grpo" / "log_history.json"
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
           "easy_first": args.easy_first, "warmup": args.warmup, "shuffled_rewards": args.shuffled_rewards,
           "validation_scenes": args.validation, "seconds": round(seconds), "validation": validate(plan, checkpoint, validation,
                                                                                             out / "validation"),
           "image_reliance_final": reliance[-1][1] if reliance else None,
           "checkpoint": _relative(checkpoint)}
    if args.paired_with:
        row["difference"] = paired_with(args.work, args.name, args.paired_with)
    print(json.dumps(row))
    RESULTS.parent.mkdir(exist_ok=True)
    with RESULTS.open("a", encoding="utf-8") as f:
        f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
