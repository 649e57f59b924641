"""Scale presets of the counting experiment: what ``--scale cpu|gpu|smoke`` runs."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

from groundkit.errors import GroundkitError
from groundkit.interfaces.backbone import ModelSize
from groundkit.scenes.generate import SceneConfig


@dataclass(frozen=True)
class CountingPlan:
    """Everything a scale fixes: data, model size, training and evaluation budgets."""

    scale: str
    model: str  # a checkpoint folder or tiny:<backbone>
    train_scenes: int
    test_scenes: int
    image_side: int
    train_max_count: int
    test_max_count: int
    size: ModelSize = field(default_factory=ModelSize)
    vocab_size: int = 400
    lora: bool = False
    gradient_checkpointing: bool = False  # small models: recomputing activations costs 16% of an SFT step, saves nothing needed
    freeze_vision: bool = True  # from scratch: keep the random vision tower (its merger trains), see docs/experiments.md
    # the prompt's system message: a model trained from scratch learns the format from its traces, and the
    # full instruction (~250 tokens) would be most of every sequence; a pretrained checkpoint gets "full"
    instruction: str = "none"
    # steps of a warm-up shared by every arm before its SFT: name the shapes' colours from left to right (no
    # coordinates, no counting); it makes a model trained from scratch look at its image (0 = none)
    warmup_steps: int = 0
    sft_steps: int = 2000
    sft_batch: int = 16
    sft_lr: float = 1e-3
    grpo_steps: int = 100
    grpo_prompts: int = 8  # prompts per step; each gets num_generations rollouts
    num_generations: int = 8
    grpo_lr: float = 1e-4
    grpo_lr_schedule: str = "linear"  # a transformers scheduler name (linear, constant_with_warmup, cosine, ...)
    grpo_warmup_steps: int = 0  # steps of learning-rate warm-up (fresh Adam moments make the first steps noisy)
    # GRPO through a LoRA adapter of this rank (0: like the SFT arms, ``lora``), merged into the checkpoint after
    grpo_lora_rank: int = 0
    grpo_temperature: float = 1.0
    max_new_tokens: int = 256  # room for test_max_count points (~15 tokens each) and the text
    eval_batch: int = 16
    reliance_every: int = 50
    gallery: int = 6
    rewards: dict[str, float] = field(default_factory=lambda: {"format": 1.0, "answer": 1.0, "point_f1": 1.0,
                                                                "count_consistency": 0.5})

    def scenes(self, split: str) -> SceneConfig:
        """The visual world: plain backgrounds, circles in three colours, questions by colour;
        the test split counts beyond the training range."""
        top = self.train_max_count if split == "train" else self.test_max_count
        return SceneConfig(self.image_side, self.image_side, max_objects=top + 2, max_count=top, min_count=1,
                           spatial_share=0.0, noise=3.0, shapes=("circle",), colors=("red", "green", "blue"),
                           count_by=("color",), max_distractors=2, large_share=0.0, backgrounds=("plain",))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


PLANS: dict[str, CountingPlan] = {
    # minutes on 2 CPU cores: a small Qwen3-VL trained from scratch (full fine-tune, vision tower frozen), 36 image tokens
    "cpu": CountingPlan(
        scale="cpu", model="tiny:qwen3-vl", train_scenes=3000, test_scenes=200, image_side=192, train_max_count=6,
        test_max_count=8, size=ModelSize(hidden=128, layers=4, heads=4, kv_heads=2, intermediate=384, vision_hidden=96,
                                         vision_layers=3, vision_heads=3, image_tokens=36), warmup_steps=400, grpo_temperature=0.7,
        # GRPO through a rank-8 adapter: full fine-tuning's Adam steps move every weight by ~lr whatever
        # its gradient's noise, and the policy drifts (docs/experiments.md, "GRPO at the CPU scale")
        grpo_lora_rank=8, grpo_lr=1e-3,
    ),
    # one H100/H200: a real checkpoint (--model), LoRA, larger pictures, more data and steps
    "gpu": CountingPlan(
        scale="gpu", model="", train_scenes=20000, test_scenes=1000, image_side=448, train_max_count=6, test_max_count=8,
        lora=True, freeze_vision=False, gradient_checkpointing=True, instruction="full", sft_steps=2000, sft_batch=16, sft_lr=2e-4, grpo_steps=300, grpo_prompts=4, num_generations=8,
        grpo_lr=1e-5, max_new_tokens=512, eval_batch=32, reliance_every=100,
    ),
    # a few steps of everything (tests)
    "smoke": CountingPlan(
        scale="smoke", model="tiny:qwen3-vl", train_scenes=24, test_scenes=6, image_side=64, train_max_count=3,
        test_max_count=4, size=ModelSize(image_tokens=4), vocab_size=300, warmup_steps=2, sft_steps=3, sft_batch=4, grpo_steps=2,
        grpo_prompts=1, num_generations=2, max_new_tokens=48, eval_batch=6, reliance_every=2, gallery=2,
    ),
}
# the CPU scale trained longer (both arms' image reliance still rises at the CPU scale's last step)
PLANS["cpu-long"] = replace(PLANS["cpu"], scale="cpu-long", sft_steps=4000)
# the GPU scale's code path (LoRA, merged checkpoints, trained vision tower) at the smoke size (tests)
PLANS["smoke-lora"] = replace(PLANS["smoke"], scale="smoke-lora", lora=True, freeze_vision=False, model="tiny:qwen2.5-vl",
                              image_side=56)


def plan_for(scale: str, model: str | None) -> CountingPlan:
    """The preset for ``scale`` with ``model`` (when given) in place of its default."""
    if scale not in PLANS:
        raise GroundkitError(f"unknown scale {scale!r}; choose one of {', '.join(PLANS)}")
    plan = PLANS[scale]
    if model:
        plan = replace(plan, model=model)
    if not plan.model:
        raise GroundkitError(f"--scale {scale} needs --model: a local checkpoint folder (e.g. gemma-3-4b-it) or tiny:<backbone>")
    return plan
