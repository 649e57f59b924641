"""Training: SFT and grounding-aware GRPO on stock TRL + peft (constrained rollouts,
mask-consistent log-probs, iVGR dual stream). Needs torch, transformers, trl and peft;
``import groundkit`` does not import this package (``groundkit.train_sft`` etc. load it lazily)."""

from groundkit.training.common import TrainingRun
from groundkit.training.config import ConfigError, TrainConfig, load_config
from groundkit.training.grpo import build_grpo
from groundkit.training.launch import train_grpo
from groundkit.training.sft import build_sft, train_sft

__all__ = ["ConfigError", "TrainConfig", "TrainingRun", "build_grpo", "build_sft", "load_config", "train_grpo", "train_sft"]
