"""Entry points that choose between the GRPO variants (plain or iVGR dual stream)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from groundkit.training.common import TrainingRun, finish
from groundkit.training.config import TrainConfig, load_config
from groundkit.training.dual_stream import build_dual_stream
from groundkit.training.grpo import build_grpo


def train_grpo(config: TrainConfig | str | Path | Mapping[str, Any], **overrides: Any) -> TrainingRun:
    """Run GRPO (or iVGR dual-stream GRPO when ``dual_stream.enabled``) from a config.

    Example::

        run = train_grpo("examples/configs/grpo-counting-points-gemma3-4b.yaml")
        [k for k in run.log_history[0] if k.startswith("rewards/")]
    """
    cfg = config if isinstance(config, TrainConfig) else load_config(config, "grpo", overrides)
    if cfg.dual_stream.enabled:
        run = build_dual_stream(cfg)
    else:
        run = build_grpo(cfg)
    finish(run.trainer, cfg)
    return run
