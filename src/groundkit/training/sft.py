"""SFT on grounded traces: TRL's SFTTrainer on prompt/completion rows (loss on completion tokens only)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from groundkit.training.common import (
    TrainingRun,
    config_callback,
    diagnostic_callbacks,
    finish,
    load_backbone,
    peft_config,
    training_grammar,
    trl_arguments,
)
from groundkit.training.config import TrainConfig, load_config
from groundkit.training.data import read_examples, sft_dataset
from groundkit.training.diagnostics import held_rows


def _sft_trainer_class() -> type:
    from trl import SFTTrainer

    class GroundkitSFTTrainer(SFTTrainer):
        """TRL's SFTTrainer; groundkit adds only the data, the LoRA config and the saved config."""

    return GroundkitSFTTrainer


def build_sft(cfg: TrainConfig) -> TrainingRun:
    """Everything for an SFT run (model, LoRA, dataset, trainer) without training."""
    from trl import SFTConfig

    loaded = load_backbone(cfg)
    grammar = training_grammar(cfg, loaded)
    d = cfg.data
    examples = read_examples(d.train, d.images, d.trace_field, d.split, d.limit)
    dataset = sft_dataset(examples, grammar, d.traces, d.trace_dialect, cfg.format.instruction)
    args = trl_arguments(SFTConfig, cfg, **({"max_length": None} if "max_length" not in cfg.trl else {}),
                         completion_only_loss=cfg.trl.get("completion_only_loss", True))
    trainer = _sft_trainer_class()(
        model=loaded.model, args=args, train_dataset=dataset, processing_class=loaded.processor,
        peft_config=peft_config(cfg, loaded),
        callbacks=[config_callback(cfg), *diagnostic_callbacks(cfg, loaded.processor,
                                                               held_rows(dataset, cfg.diagnostics.image_reliance_rows))],
    )
    return TrainingRun(trainer, loaded, grammar, Path(cfg.output_dir), cfg)


def train_sft(config: TrainConfig | str | Path | Mapping[str, Any], **overrides: Any) -> TrainingRun:
    """Run SFT from a config (a :class:`TrainConfig`, a YAML path or a mapping).

    Example::

        run = train_sft("examples/configs/sft-counting-points-gemma3-4b.yaml")
        run.log_history[-1]
    """
    cfg = config if isinstance(config, TrainConfig) else load_config(config, "sft", overrides)
    run = build_sft(cfg)
    finish(run.trainer, cfg)
    return run
