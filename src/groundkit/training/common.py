"""What SFT and GRPO share: the model + LoRA config, the grammar, TRL arguments, checkpoints."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from groundkit.backbones import LoadedModel, load_model
from groundkit.backbones.generation import resolve_format
from groundkit.errors import GroundkitError
from groundkit.text.grammar import ComposedGrammar
from groundkit.training.config import ConfigError, TrainConfig

CONFIG_FILE = "groundkit_config.yaml"


@dataclass
class TrainingRun:
    """What a training call returns: the trainer (TRL), the loaded model, the grammar and the output folder."""

    trainer: Any
    loaded: LoadedModel
    grammar: ComposedGrammar
    output_dir: Path
    config: TrainConfig

    @property
    def log_history(self) -> list[dict[str, Any]]:
        return self.trainer.state.log_history


def load_backbone(cfg: TrainConfig) -> LoadedModel:
    try:
        loaded = load_model(cfg.model.path, backbone=cfg.model.backbone, dtype=cfg.model.dtype, seed=cfg.model.seed)
    except GroundkitError as exc:
        raise ConfigError("model.path", str(exc)) from exc
    if cfg.model.freeze_vision:
        frozen = loaded.backbone.vision_tower_parameters(loaded.model)
        if not frozen:
            raise ConfigError("model.freeze_vision", f"the backbone finds no vision-tower parameter in {loaded.source}")
        for param in frozen:
            param.requires_grad_(False)
    return loaded


def training_grammar(cfg: TrainConfig, loaded: LoadedModel) -> ComposedGrammar:
    try:
        return resolve_format(loaded, cfg.format.dialect, cfg.format.frame, cfg.format.types)
    except GroundkitError as exc:
        raise ConfigError("format", str(exc)) from exc


def peft_config(cfg: TrainConfig, loaded: LoadedModel) -> Any:
    """A ``peft.LoraConfig`` (None when ``lora.enabled`` is false: full fine-tuning)."""
    if not cfg.lora.enabled:
        return None
    from peft import LoraConfig

    lora = cfg.lora
    targets = lora.target_modules if lora.target_modules is not None else loaded.backbone.lora_target_modules
    if isinstance(targets, str) and not loaded.backbone.lora_targets(loaded.model) and lora.target_modules is None:
        raise ConfigError("lora.target_modules", f"the backbone regex selects no module of {loaded.source}")
    return LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout, target_modules=targets,
                      bias=lora.bias, task_type="CAUSAL_LM")


def trl_arguments(config_cls: type, cfg: TrainConfig, **managed: Any) -> Any:
    """``config_cls(**cfg.trl, **managed)``; unknown or bad TRL arguments name their ``trl.<key>``."""
    known = {f.name for f in dataclasses.fields(config_cls)}
    for key in cfg.trl:
        if key not in known:
            raise ConfigError(f"trl.{key}", f"not an argument of {config_cls.__name__}")
    kwargs = {"output_dir": cfg.output_dir, "report_to": [], "save_only_model": False, **cfg.trl, **managed}
    try:
        return config_cls(**kwargs)
    except (TypeError, ValueError) as exc:
        bad = next((k for k in cfg.trl if k in str(exc)), None)
        raise ConfigError(f"trl.{bad}" if bad else "trl", f"{config_cls.__name__} rejected it: {exc}") from exc


def resume_checkpoint(cfg: TrainConfig) -> str | bool | None:
    """``resume_from_checkpoint``: a folder (must exist), true (the latest in output_dir) or None."""
    value = cfg.resume_from_checkpoint
    if value in (None, False):
        return None
    if value is True:
        from transformers.trainer_utils import get_last_checkpoint

        last = get_last_checkpoint(cfg.output_dir) if Path(cfg.output_dir).is_dir() else None
        if last is None:
            raise ConfigError("resume_from_checkpoint", f"true, but {cfg.output_dir} holds no checkpoint-* folder")
        return last
    if not Path(str(value)).is_dir():
        raise ConfigError("resume_from_checkpoint", f"checkpoint folder not found: {value}")
    return str(value)


def config_callback(cfg: TrainConfig) -> Any:
    """A TrainerCallback writing the groundkit config into every checkpoint (beside the LoRA adapter)."""
    from transformers import TrainerCallback

    class SaveGroundkitConfig(TrainerCallback):
        def on_save(self, args, state, control, **kwargs):
            if state.is_world_process_zero:
                folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
                if folder.is_dir():
                    cfg.save(folder / CONFIG_FILE)
            return control

        def on_train_end(self, args, state, control, **kwargs):
            if state.is_world_process_zero:
                Path(args.output_dir).mkdir(parents=True, exist_ok=True)
                cfg.save(Path(args.output_dir) / CONFIG_FILE)
            return control

    return SaveGroundkitConfig()


def diagnostic_callbacks(cfg: TrainConfig, processor: Any, rows: list[dict[str, Any]]) -> list[Any]:
    """The image-reliance callback (``diagnostics`` section) over ``rows`` (prompt, completion, images)."""
    d = cfg.diagnostics
    if not d.image_reliance_every or len(rows) < 2:
        return []
    from groundkit.training.diagnostics import image_reliance_callback

    return [image_reliance_callback(processor, rows[: d.image_reliance_rows], d.image_reliance_every,
                                    d.image_reliance_warn_after)]


def finish(trainer: Any, cfg: TrainConfig) -> None:
    """Train (resuming if asked), then save the final adapter + processor to ``output_dir``."""
    trainer.train(resume_from_checkpoint=resume_checkpoint(cfg))
    trainer.save_model(cfg.output_dir)
