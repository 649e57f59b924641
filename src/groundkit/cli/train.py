"""``groundkit train sft|grpo --config CFG.yaml``: SFT and grounding-aware GRPO (TRL + peft).

Multi-GPU / DeepSpeed: ``accelerate launch --config_file examples/configs/accelerate/ddp.yaml
-m groundkit.cli train grpo --config CFG.yaml`` (the same entry point as a single CPU process).
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from .app import app

train_app = typer.Typer(
    no_args_is_help=True,
    help="Train with TRL + peft: SFT on grounded traces, grounding-aware GRPO.\n\n"
    "Example: groundkit train grpo --config examples/configs/grpo-counting-points-gemma3-4b.yaml",
)
app.add_typer(train_app, name="train")

CONFIG = typer.Option(..., "--config", "-c", help="Training config (YAML): model, lora, data, format, rewards, generation, trl.")
SET = typer.Option(None, "--set", help="Override a config key, e.g. --set trl.max_steps=10 (repeatable; YAML values).")
RESUME = typer.Option(None, "--resume", help="Resume from this checkpoint folder (or 'latest' in output_dir).")


def overrides(pairs: list[str] | None, resume: str | None) -> dict:
    import yaml

    from groundkit.training.config import ConfigError

    out: dict = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError(pair, "--set takes KEY=VALUE, e.g. trl.max_steps=10")
        out[key.strip()] = yaml.safe_load(value)
    if resume:
        out["resume_from_checkpoint"] = True if resume == "latest" else resume
    return out


def report(run) -> None:
    last = next((h for h in reversed(run.log_history) if "loss" in h), {})
    shown = {k: v for k, v in last.items() if k in ("step", "loss") or k.startswith("rewards/") or k == "reward"}
    typer.echo(json.dumps({"output_dir": str(run.output_dir), "global_step": run.trainer.state.global_step, **shown}))


@train_app.command("sft")
def sft_command(config: Path = CONFIG, set_: list[str] = typer.Option(None, "--set", help=SET.help), resume: str = RESUME) -> None:
    """Supervised fine-tuning on grounded traces (loss on completion tokens only, LoRA by default).

    Example: groundkit train sft --config examples/configs/sft-counting-points-gemma3-4b.yaml --set trl.max_steps=100
    """
    from groundkit.training import load_config, train_sft

    report(train_sft(load_config(config, "sft", overrides(set_, resume))))


@train_app.command("grpo")
def grpo_command(config: Path = CONFIG, set_: list[str] = typer.Option(None, "--set", help=SET.help), resume: str = RESUME) -> None:
    """Grounding-aware GRPO: constrained rollouts, groundkit reward terms, optional iVGR dual stream.

    Example: groundkit train grpo --config examples/configs/grpo-spatial-boxes-qwen25vl-3b.yaml --resume latest
    """
    from groundkit.training import load_config, train_grpo

    report(train_grpo(load_config(config, "grpo", overrides(set_, resume))))
