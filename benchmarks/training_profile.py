"""Where CPU time goes per SFT step and per GRPO step, at the counting experiment's CPU size.

SFT step = collate (chat template, tokenizer, image processor) + forward + backward + optimizer.
GRPO step = rollouts (generation under the grammar) + rewards + log-probs (policy forward
passes with mask replay) + loss backward + optimizer. Each part is timed by wrapping the
trainer's own methods (nothing is reimplemented); the rest of a step is reported as "other".

    python benchmarks/training_profile.py [--steps 12] [--threads 2]

Prints a table and writes ``benchmarks/results/training_profile.json``.
"""

from __future__ import annotations

import argparse
import functools
import json
import platform
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import torch

RESULTS = Path(__file__).resolve().parent / "results" / "training_profile.json"


class Timers:
    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.depth = 0

    def wrap(self, obj, name: str, label: str) -> None:
        original = getattr(obj, name)

        @functools.wraps(original)
        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds[label] += time.perf_counter() - start

        setattr(obj, name, timed)


def _setup(root: Path, seed: int):
    from dataclasses import replace

    from groundkit.experiments.counting import build_base, make_scenes, make_traces
    from groundkit.experiments.plans import PLANS

    plan = replace(PLANS["cpu"], train_scenes=96, test_scenes=8)
    make_scenes(root / "scenes", plan, seed)
    traces = make_traces(root, plan)
    base = build_base(root / "model", plan, traces, seed)
    return plan, traces, base


def profile_sft(root: Path, plan, traces, base, steps: int, checkpointing: bool) -> dict[str, float]:
    from groundkit.training import build_sft, load_config

    cfg = load_config({"model": {"path": base["path"], "freeze_vision": plan.freeze_vision}, "lora": {"enabled": False},
                       "data": {"train": traces["grounded"], "images": traces["images"]},
                       "format": {"dialect": "groundkit", "frame": "rel-1000", "types": ["point"]},
                       "diagnostics": {"image_reliance_every": 0},
                       "trl": {"output_dir": str(root / "sft"), "max_steps": steps, "per_device_train_batch_size": plan.sft_batch,
                               "use_cpu": True, "save_strategy": "no", "learning_rate": plan.sft_lr, "logging_steps": steps,
                               "gradient_checkpointing": checkpointing}},
                      "sft")
    run = build_sft(cfg)
    trainer, t = run.trainer, Timers()
    t.wrap(trainer, "data_collator", "collate")
    t.wrap(trainer, "training_step", "forward+backward")
    t.wrap(trainer, "compute_loss", "forward")
    start = time.perf_counter()
    trainer.train()
    total = time.perf_counter() - start
    out = {"collate": t.seconds["collate"], "forward": t.seconds["forward"],
           "backward": t.seconds["forward+backward"] - t.seconds["forward"]}
    out["optimizer+other"] = total - sum(out.values())
    return {k: v / steps for k, v in out.items()} | {"step": total / steps}


def profile_grpo(root: Path, plan, traces, base, steps: int, checkpointing: bool) -> dict[str, float]:
    from groundkit.training import build_grpo, load_config

    g = plan.num_generations
    cfg = load_config({"model": {"path": base["path"], "freeze_vision": plan.freeze_vision}, "lora": {"enabled": False},
                       "data": {"train": traces["grounded"], "images": traces["images"]},
                       "format": {"dialect": "groundkit", "frame": "rel-1000", "types": ["point"]},
                       "rewards": dict(plan.rewards), "diagnostics": {"image_reliance_every": 0},
                       "generation": {"constrained": True, "max_new_tokens": plan.max_new_tokens, "num_generations": g},
                       "trl": {"output_dir": str(root / "grpo"), "max_steps": steps, "per_device_train_batch_size": plan.grpo_prompts * g,
                               "use_cpu": True, "save_strategy": "no", "learning_rate": plan.grpo_lr, "beta": 0.0,
                               "logging_steps": steps, "gradient_checkpointing": checkpointing}}, "grpo")
    run = build_grpo(cfg)
    trainer, t = run.trainer, Timers()
    t.wrap(trainer, "_generate_single_turn", "rollouts")
    t.wrap(trainer, "_calculate_rewards", "rewards")
    t.wrap(trainer, "_get_per_token_logps_and_entropies", "log-probs")
    t.wrap(trainer, "training_step", "training_step")
    start = time.perf_counter()
    trainer.train()
    total = time.perf_counter() - start
    out = {"rollouts": t.seconds["rollouts"], "rewards": t.seconds["rewards"], "log-probs (forward)": t.seconds["log-probs"]}
    out["backward+optimizer+other"] = total - sum(out.values())
    return {k: v / steps for k, v in out.items()} | {"step": total / steps}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        plan, traces, base = _setup(root, args.seed)
        runs = {}
        for checkpointing in (True, False):  # TRL's default, then without activation recomputation
            runs[checkpointing] = (profile_sft(root, plan, traces, base, args.steps, checkpointing),
                                   profile_grpo(root, plan, traces, base, max(2, args.steps // 3), checkpointing))
    sft, grpo = runs[True]
    print(f"{'phase':6} {'part':28} {'s/step':>8} {'share':>7}   (gradient checkpointing on, TRL's default)")
    for phase, parts in (("sft", sft), ("grpo", grpo)):
        for part, value in parts.items():
            print(f"{phase:6} {part:28} {value:8.3f} {value / parts['step']:7.1%}")
    sft_off, grpo_off = runs[False]
    print(f"gradient checkpointing off: sft {sft_off['step']:.3f} s/step ({sft_off['step'] / sft['step']:.2f}x), "
          f"grpo {grpo_off['step']:.3f} s/step ({grpo_off['step'] / grpo['step']:.2f}x)")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"benchmark": "training_profile", "machine": platform.processor() or platform.machine(),
                                   "threads": args.threads, "torch": torch.__version__, "model": base,
                                   "sft_batch": plan.sft_batch, "grpo_rollouts_per_step": plan.grpo_prompts * plan.num_generations,
                                   "max_new_tokens": plan.max_new_tokens, "sft_seconds_per_step": sft,
                                   "grpo_seconds_per_step": grpo}, indent=2, default=str), encoding="utf-8")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
