"""``groundkit experiment counting``: does thinking with points improve counting?

Three arms on the same images and the same from-config backbone:

- ``direct``: SFT on traces that reason in text only, then answer;
- ``grounded``: SFT on the same traces with one point per counted object (``groundkit synth``
  with the oracle grounder: the teacher's text plus points after the phrase it counts);
- ``grounded+grpo``: the ``grounded`` checkpoint, then GRPO with constrained rollouts and
  grounding rewards.

The two SFT arms share prompts, images, steps and everything else; their traces differ only
by the points. Every arm is evaluated with ``groundkit eval`` (constrained decoding) on a
held-out test split whose counts go beyond the training range.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from groundkit.errors import GroundkitError
from groundkit.experiments.plans import CountingPlan, plan_for
from groundkit.experiments.results import curves, summarize_arm, write_results
from groundkit.experiments.stages import StageRunner
from groundkit.interfaces.experiment import Experiment, ExperimentOptions, Progress

ARMS = ("direct", "grounded", "grounded+grpo")
DIALECT, FRAME, TYPES = "groundkit", "rel-1000", ["point"]


class CountingExperiment(Experiment):
    name = "counting"
    description = "direct vs grounded (points) vs grounded+GRPO counting on procedural scenes, from scenes to eval"
    scales = ("cpu", "cpu-long", "gpu", "smoke", "smoke-lora")

    def run(self, out: Path, options: ExperimentOptions, progress: Progress | None = None) -> dict[str, Any]:
        plan = plan_for(options.scale, options.model)
        out = Path(out)
        stages = StageRunner(out, options.fresh, progress)
        seed = options.seed
        stages.run("scenes", {"plan": _scene_settings(plan), "seed": seed}, lambda: make_scenes(out / "scenes", plan, seed),
                   outputs=out / "scenes")
        traces = stages.run("traces", {"plan": _scene_settings(plan), "seed": seed}, lambda: make_traces(out, plan),
                            outputs=out / "traces")
        base = stages.run("model", {"model": plan.model, "size": plan.to_dict()["size"], "vocab": plan.vocab_size,
                                    "instruction": plan.instruction, "seed": seed},
                          lambda: build_base(out / "model", plan, traces, seed), outputs=out / "model", after=["traces"])
        start, start_stage = base["path"], "model"
        if plan.warmup_steps:
            settings = {"steps": plan.warmup_steps, "plan": _train_settings(plan, "sft"), "seed": seed}
            start = stages.run("warmup", settings, lambda: train_warmup(out, plan, base["path"], seed),
                               outputs=out / "arms" / "warmup", after=["model"])["checkpoint"]
            start_stage = "warmup"
        checkpoints: dict[str, str] = {}
        for arm in ("direct", "grounded"):
            settings = {"arm": arm, "start": start, "plan": _train_settings(plan, "sft"), "seed": seed}
            checkpoints[arm] = stages.run(f"sft-{arm}", settings, lambda arm=arm: train_arm_sft(out, plan, start, traces, arm, seed),
                                          outputs=out / "arms" / arm, after=[start_stage])["checkpoint"]
        settings = {"start": checkpoints["grounded"], "plan": _train_settings(plan), "seed": seed}
        checkpoints["grounded+grpo"] = stages.run("grpo", settings, lambda: train_arm_grpo(out, plan, checkpoints["grounded"],
                                                                                         traces, seed),
                                                  outputs=out / "arms" / "grounded+grpo", after=["sft-grounded"])["checkpoint"]
        evals = {}
        for arm in ARMS:
            trained = "grpo" if arm == "grounded+grpo" else f"sft-{arm}"
            settings = {"checkpoint": checkpoints[arm], "max_new_tokens": plan.max_new_tokens, "seed": seed}
            evals[arm] = stages.run(f"eval-{arm}", settings, lambda arm=arm: evaluate_arm(out, plan, checkpoints[arm], arm),
                                    outputs=out / "eval" / _slug(arm), after=[trained])
        arms = {arm: summarize_arm(out, plan, arm, evals[arm], seed) for arm in ARMS}
        warmup = curves(out / "arms" / "warmup") if plan.warmup_steps else None
        return write_results(out, plan, arms, traces, stages.seconds() / 60.0, seed, warmup)


def _slug(arm: str) -> str:
    return arm.replace("+", "-")


def _scene_settings(plan: CountingPlan) -> dict[str, Any]:
    return {k: v for k, v in plan.to_dict().items() if k in ("train_scenes", "test_scenes", "image_side", "train_max_count",
                                                              "test_max_count")}


SFT_FIELDS = ("model", "train_scenes", "image_side", "train_max_count", "size", "vocab_size", "lora", "freeze_vision",
              "sft_steps", "sft_batch", "sft_lr", "reliance_every", "gradient_checkpointing", "instruction")


def _train_settings(plan: CountingPlan, stage: str = "grpo") -> dict[str, Any]:
    """What a training stage depends on (SFT ignores the generation and evaluation settings)."""
    d = plan.to_dict()
    if stage == "sft":
        return {k: d[k] for k in SFT_FIELDS}
    return {k: v for k, v in d.items() if k not in ("gallery", "eval_batch")}


# --- stages ---------------------------------------------------------------------------------
def make_scenes(root: Path, plan: CountingPlan, seed: int) -> dict[str, Any]:
    """Train and test scenes (different seeds; test counts reach ``test_max_count``)."""
    from groundkit.scenes import generate_scenes

    train = generate_scenes(root / "train", plan.train_scenes, seed, plan.scenes("train"))
    test = generate_scenes(root / "test", plan.test_scenes, seed + 1_000_003, plan.scenes("test"))
    return {"train": str(root / "train" / "scenes.jsonl"), "test": str(root / "test" / "scenes.jsonl"),
            "train_count": train["n"], "test_count": test["n"]}


def make_traces(out: Path, plan: CountingPlan) -> dict[str, Any]:
    """``groundkit synth`` (simulated teacher, oracle grounder, points) over the training scenes; the
    direct arm's traces are the same teacher's text without the points."""
    from groundkit.synth import load_config, run_synth

    folder = out / "traces"
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "synth.yaml"
    config.write_text(json.dumps({
        "input": str((out / "scenes" / "train" / "scenes.jsonl").resolve()), "out": "synth", "batch_size": 256,
        "teacher": {"simulate": {"wrong": 0.0, "seed": 0}, "dialect": DIALECT}, "extractor": "rule",
        "grounder": {"name": "oracle"}, "output": {"dialect": DIALECT, "frame": FRAME, "grounding": "point"},
    }), encoding="utf-8")
    summary = run_synth(load_config(config))
    synth = folder / "synth" / "data.jsonl"
    records = [json.loads(line) for line in synth.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not records:
        raise GroundkitError(f"synth kept no record of {summary.total}; dropped by reason: {summary.dropped}")
    files = {"grounded": folder / "grounded.jsonl", "direct": folder / "direct.jsonl"}
    with files["grounded"].open("w", encoding="utf-8") as g, files["direct"].open("w", encoding="utf-8") as d:
        for rec in records:
            g.write(json.dumps(rec) + "\n")
            d.write(json.dumps({**rec, "completion": rec["provenance"]["teacher_completion"]}) + "\n")
    return {"grounded": str(files["grounded"]), "direct": str(files["direct"]), "images": str(folder / "synth"),
            "records": len(records), "answers": [str(r.get("answer")) for r in records]}


WARMUP_QUESTION = "What colours are the shapes, from left to right?"


def make_warmup(out: Path) -> dict[str, Any]:
    """A neutral warm-up shared by every arm: name the shapes' colours from left to right. It makes the
    model look (the text alone cannot tell the colours) without writing a coordinate or counting a colour."""
    folder = out / "traces"
    scenes = [json.loads(line) for line in (out / "scenes" / "train" / "scenes.jsonl").read_text(encoding="utf-8").splitlines()
              if line.strip()]
    path = folder / "warmup.jsonl"
    with path.open("w", encoding="utf-8") as f:
        for scene in scenes:
            shapes = sorted(scene["scene"], key=lambda o: (o["box"][0] + o["box"][2]) / 2)
            colours = ", ".join(o["label"].split()[0] for o in shapes)
            f.write(json.dumps({
                "id": scene["id"], "image": str(Path("..", "..", "scenes", "train", scene["image"])), "width": scene["width"],
                "height": scene["height"], "question": WARMUP_QUESTION, "answer": colours, "answer_type": "free_text",
                "completion": f"<think>From left to right: {colours}.</think><answer>{colours}</answer>",
            }) + "\n")
    return {"warmup": str(path), "images": str(folder / "synth"), "records": len(scenes)}


def build_base(folder: Path, plan: CountingPlan, traces: dict[str, Any], seed: int) -> dict[str, Any]:
    """The starting checkpoint: ``tiny:<backbone>`` is built from config at the plan's size with a
    tokenizer trained on the experiment's own text and saved like a checkpoint; a folder is used as is."""
    if not plan.model.startswith("tiny:"):
        if not (Path(plan.model) / "config.json").exists():
            raise GroundkitError(f"--model {plan.model}: not a checkpoint folder (no config.json)")
        return {"path": str(Path(plan.model).resolve()), "built": False}
    from groundkit.backbones import grounding_instruction, train_tokenizer
    from groundkit.frames import ImageSize
    from groundkit.registry import get_registry
    from groundkit.text.grammar import get_grammar

    name = plan.model.removeprefix("tiny:")
    backbone = get_registry().backbone(name)
    texts: list[str] = []
    for arm in ("grounded", "direct"):
        for line in Path(traces[arm]).read_text(encoding="utf-8").splitlines()[:2000]:
            rec = json.loads(line)
            texts += [rec["completion"], rec.get("question") or ""]
    if plan.instruction == "full":
        grammar = get_grammar(DIALECT, FRAME, TYPES)
        texts += [grounding_instruction(grammar, ImageSize(plan.image_side, plan.image_side))] * 50
    tokenizer = train_tokenizer(texts, "gemma" if name.startswith("gemma") else "qwen", plan.vocab_size)
    loaded = backbone.tiny(seed=seed, tokenizer=tokenizer, size=plan.size)
    loaded.save(folder)
    params = sum(p.numel() for p in loaded.model.parameters())
    return {"path": str(folder.resolve()), "built": True, "parameters": params, "vocab": len(tokenizer)}


def _trl(plan: CountingPlan, output_dir: Path, seed: int, **extra: Any) -> dict[str, Any]:
    import torch

    cuda = torch.cuda.is_available()
    return {"output_dir": str(output_dir), "use_cpu": not cuda, "bf16": cuda, "seed": seed, "data_seed": seed,
            "logging_steps": max(1, min(25, plan.sft_steps // 20)), "save_strategy": "no", "report_to": [],
            "dataloader_num_workers": 0, "gradient_checkpointing": plan.gradient_checkpointing, **extra}


def _save_run(run: Any, folder: Path, lora: bool) -> str:
    """The arm's final checkpoint (LoRA merged into the weights, so the next stage and eval load it
    like any checkpoint) and its training log."""
    (folder / "log_history.json").write_text(json.dumps(run.log_history, indent=1, default=float), encoding="utf-8")
    if not lora:
        return str(folder.resolve())
    final = folder / "merged"
    run.trainer.model.merge_and_unload().save_pretrained(final)
    run.loaded.processor.save_pretrained(final)
    return str(final.resolve())


def train_arm_sft(out: Path, plan: CountingPlan, base: str, traces: dict[str, Any], arm: str, seed: int) -> dict[str, Any]:
    from groundkit.training import train_sft

    folder = out / "arms" / arm
    cfg = {
        "kind": "sft", "model": {"path": base, "seed": seed, "freeze_vision": plan.freeze_vision}, "lora": {"enabled": plan.lora},
        "data": {"train": traces[arm], "images": traces["images"]},
        "format": {"dialect": DIALECT, "frame": FRAME, "types": TYPES, "instruction": plan.instruction},
        "diagnostics": {"image_reliance_every": plan.reliance_every, "image_reliance_rows": 8,
                        "image_reliance_warn_after": 4 * plan.reliance_every},
        "trl": _trl(plan, folder, seed, max_steps=plan.sft_steps, per_device_train_batch_size=plan.sft_batch,
                    learning_rate=plan.sft_lr, lr_scheduler_type="cosine", warmup_steps=max(1, plan.sft_steps // 20),
                    weight_decay=0.0),
    }
    start = time.monotonic()
    run = train_sft(cfg)
    return {"checkpoint": _save_run(run, folder, plan.lora), "seconds": time.monotonic() - start}


def train_warmup(out: Path, plan: CountingPlan, base: str, seed: int) -> dict[str, Any]:
    """The shared warm-up (:func:`make_warmup`): ``plan.warmup_steps`` of SFT from the base checkpoint."""
    warmup = make_warmup(out)
    return train_arm_sft(out, replace(plan, sft_steps=plan.warmup_steps), base, warmup, "warmup", seed)


def grpo_config(out: Path, plan: CountingPlan, start_from: str, traces: dict[str, Any], seed: int) -> dict[str, Any]:
    """The ``groundkit train grpo`` config of the ``grounded+grpo`` arm."""
    folder = out / "arms" / "grounded+grpo"
    rank = plan.grpo_lora_rank
    lora = {"enabled": True, "r": rank, "alpha": 2 * rank, "dropout": 0.0} if rank else {"enabled": plan.lora}
    return {
        "kind": "grpo", "model": {"path": start_from, "seed": seed, "freeze_vision": plan.freeze_vision},
        "lora": lora,
        "data": {"train": traces["grounded"], "images": traces["images"]},
        "format": {"dialect": DIALECT, "frame": FRAME, "types": TYPES, "instruction": plan.instruction}, "rewards": dict(plan.rewards),
        "generation": {"constrained": True, "mask_consistent_logps": True, "max_new_tokens": plan.max_new_tokens,
                       "num_generations": plan.num_generations, "temperature": plan.grpo_temperature},
        "diagnostics": {"image_reliance_every": max(1, plan.reliance_every // 5), "image_reliance_rows": 8,
                        "image_reliance_warn_after": 10**9},
        "trl": _trl(plan, folder, seed, max_steps=plan.grpo_steps,
                    per_device_train_batch_size=plan.grpo_prompts * plan.num_generations, learning_rate=plan.grpo_lr,
                    lr_scheduler_type=plan.grpo_lr_schedule, warmup_steps=plan.grpo_warmup_steps, beta=0.0,
                    logging_steps=1, shuffle_dataset=True),
    }


def train_arm_grpo(out: Path, plan: CountingPlan, start_from: str, traces: dict[str, Any], seed: int) -> dict[str, Any]:
    from groundkit.training import train_grpo

    cfg = grpo_config(out, plan, start_from, traces, seed)
    start = time.monotonic()
    run = train_grpo(cfg)
    return {"checkpoint": _save_run(run, out / "arms" / "grounded+grpo", cfg["lora"]["enabled"]),
            "seconds": time.monotonic() - start}


def evaluate_arm(out: Path, plan: CountingPlan, checkpoint: str, arm: str) -> dict[str, Any]:
    from groundkit.eval import EvalConfig, evaluate

    config = EvalConfig([f"scenes:{out / 'scenes' / 'test'}"], dialect=DIALECT, frame=FRAME, model=checkpoint,
                        types=TYPES, metrics=["format", "answer", "point_in_mask", "point_f1"],
                        batch_size=plan.eval_batch, max_new_tokens=plan.max_new_tokens, instruction=plan.instruction)
    run = evaluate(config, out / "eval" / _slug(arm), fresh=True, gallery=plan.gallery)
    return {"results": str(run.out / "results.jsonl"), "report": str(run.report), "records": len(run.rows),
            "problems": run.problems[:20]}
