"""Grounding-aware GRPO: TRL's GRPOTrainer with groundkit rewards, constrained rollouts and
mask-consistent log-probs (see :mod:`groundkit.training.constrained`).

The subclass overrides four small hooks of TRL 1.16 and calls the originals:

- ``_generate_single_turn``: adds the grounded logits processor (per-row frames) on the
  transformers path; on the vLLM path the grammar's regex goes to
  ``GRPOConfig.vllm_structured_outputs_regex`` instead (set at construction);
- ``_generate``: re-decodes completions keeping the special tokens a dialect is made of
  (TRL decodes with ``skip_special_tokens=True``), dropping only EOS / padding;
- ``_generate_and_score_completions`` / ``_compute_loss``: remember each row's image size
  (carried through TRL's shuffles as the ``groundkit_image_sizes`` tensor);
- ``_get_per_token_logps_and_entropies``: swaps the model for a :class:`MaskReplayingModel`
  when rollouts are constrained and ``mask_consistent_logps`` is on (the default); it goes
  through TRL's fused LM head with the masked log-prob function swapped in, so no
  (B, T, V) logits, mask or masked copy is made (see :mod:`groundkit.training.fused_masked`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from groundkit.errors import GroundkitError
from groundkit.rewards import RewardSet
from groundkit.text.grammar import ComposedGrammar
from groundkit.training.common import (
    TrainingRun,
    config_callback,
    diagnostic_callbacks,
    load_backbone,
    peft_config,
    training_grammar,
    trl_arguments,
)
from groundkit.training.config import ConfigError, TrainConfig, reward_terms
from groundkit.training.constrained import (
    MaskReplayingModel,
    build_processor,
    check_replay_support,
    injected_logits_processor,
    row_sizes,
)
from groundkit.training.data import read_examples

SIZES_KEY = "groundkit_image_sizes"


def structured_outputs_regex(grammar: ComposedGrammar) -> str:
    """The grammar as one batch-wide regex for vLLM structured outputs: syntax plus the
    frame's fixed bounds. Per-image frames raise :class:`groundkit.PerImageBoundError` (one
    regex cannot carry per-row bounds); x1<x2 and budget closing are not expressible."""
    from groundkit.decoding.exports import export_regex

    return export_regex(grammar)


def _grpo_trainer_class() -> type:
    import torch
    from trl import GRPOTrainer

    class GroundkitGRPOTrainer(GRPOTrainer):
        """GRPOTrainer with constrained rollouts and mask-consistent log-probs (keyword arguments
        ``grammar``, ``constrained``, ``mask_consistent_logps``, ``decoding_backend``)."""

        def __init__(self, *args: Any, grammar: ComposedGrammar, constrained: bool = True,
                     mask_consistent_logps: bool = True, decoding_backend: str = "groundkit", **kwargs: Any):
            self.gk_grammar = grammar
            self.gk_constrained = constrained
            self.gk_mask_consistent = mask_consistent_logps
            self.gk_backend = decoding_backend
            self.gk_rows: list | None = None
            super().__init__(*args, **kwargs)
            self.gk_replay_violations = 0

        # --- rollouts ---------------------------------------------------------------------
        def gk_processor(self, sizes: list) -> Any:
            return build_processor(self._tokenizer, self.gk_grammar, sizes, self.max_completion_length, self.gk_backend)

        def _generate_single_turn(self, prompt_ids, images, multimodal_fields, num_generations, has_tool_images=False):
            if not self.gk_constrained or self.use_vllm or self.use_transformers_continuous_batching:
                return super()._generate_single_turn(prompt_ids, images, multimodal_fields, num_generations, has_tool_images)
            processor = self.gk_processor(row_sizes(images, len(prompt_ids)))
            if self.gk_mask_consistent:
                check_replay_support(processor, self.gk_backend)
            target = self.accelerator.unwrap_model(self.model_wrapped)
            with injected_logits_processor(target, processor):
                return super()._generate_single_turn(prompt_ids, images, multimodal_fields, num_generations, has_tool_images)

        def _generate(self, prompts: list):
            out = list(super()._generate(prompts))
            completion_ids, completions = out[1], out[3]
            stops = {*self.eos_token_ids, self._tokenizer.pad_token_id}
            texts = [self._tokenizer.decode([t for t in ids if t not in stops], skip_special_tokens=False)
                     for ids in completion_ids]
            if completions and isinstance(completions[0], list):
                out[3] = [[{"role": "assistant", "content": t}] for t in texts]
            else:
                out[3] = texts
            return tuple(out)

        # --- row bookkeeping ----------------------------------------------------------------
        def _generate_and_score_completions(self, inputs):
            images = [x.get("images") or ([x["image"]] if x.get("image") is not None else None) for x in inputs]
            self.gk_rows = row_sizes(images, len(inputs))
            output = super()._generate_and_score_completions(inputs)
            output[SIZES_KEY] = torch.tensor([[s.width, s.height] if s else [0, 0] for s in self.gk_rows],
                                             device=self.accelerator.device)
            return output

        def _compute_loss(self, model, inputs):
            from groundkit.frames import ImageSize

            if SIZES_KEY in inputs:
                self.gk_rows = [ImageSize(w, h) if w else None for w, h in inputs[SIZES_KEY].tolist()]
            return super()._compute_loss(model, inputs)

        # --- log-probs ------------------------------------------------------------------------
        @property
        def gk_replaying(self) -> bool:
            return self.gk_constrained and self.gk_mask_consistent and not self.use_vllm and self.gk_rows is not None

        def _get_per_token_logps_and_entropies(self, model, input_ids, attention_mask, logits_to_keep, *args, **kwargs):
            if self.gk_replaying:
                if len(self.gk_rows) != input_ids.size(0):
                    raise GroundkitError(f"mask replay: {input_ids.size(0)} rows but {len(self.gk_rows)} image sizes")
                model = MaskReplayingModel(model, self.gk_processor, self.gk_rows, logits_to_keep, self.temperature,
                                           on_violations=self._gk_count_violations)
            return super()._get_per_token_logps_and_entropies(model, input_ids, attention_mask, logits_to_keep, *args, **kwargs)

        def _gk_count_violations(self, n: int) -> None:
            self.gk_replay_violations += n
            self._metrics["train" if self.model.training else "eval"]["groundkit/replay_violations"].append(float(n))

    return GroundkitGRPOTrainer


def reward_functions(cfg: TrainConfig, grammar: ComposedGrammar) -> tuple[list[Any], list[float]]:
    """TRL reward callables (one per term, logged as ``rewards/<term>``) and their weights."""
    from groundkit.rewards.trl import trl_reward_funcs

    spec = RewardSet(reward_terms(cfg.rewards), reading=cfg.reading)  # parameters applied (rewards: {term: {weight, ...}})
    return trl_reward_funcs(spec, grammar.dialect.name, grammar.frame.name, [t.name for t in grammar.types])


def grpo_arguments(cfg: TrainConfig, grammar: ComposedGrammar, weights: list[float]) -> Any:
    from trl import GRPOConfig

    g = cfg.generation
    managed: dict[str, Any] = {"max_completion_length": g.max_new_tokens, "num_generations": g.num_generations,
                               "temperature": g.temperature, "reward_weights": weights}
    if cfg.trl.get("use_vllm") and g.constrained and not cfg.trl.get("vllm_structured_outputs_regex"):
        managed["vllm_structured_outputs_regex"] = structured_outputs_regex(grammar)
    return trl_arguments(GRPOConfig, cfg, **managed)


def build_grpo(cfg: TrainConfig, trainer_class: type | None = None, rewards: Any = None) -> TrainingRun:
    """Everything for a GRPO run (model, LoRA, dataset, rewards, trainer) without training."""
    from groundkit.training.data import grpo_dataset, reference_rows

    loaded = load_backbone(cfg)
    grammar = training_grammar(cfg, loaded)
    d = cfg.data
    examples = read_examples(d.train, d.images, d.trace_field, d.split, d.limit)
    ds = cfg.dual_stream
    dataset = grpo_dataset(examples, grammar, ds.enabled, ds.textual_instruction, cfg.format.instruction)
    funcs, weights = (rewards or reward_functions)(cfg, grammar)
    args = grpo_arguments(cfg, grammar, weights)
    if cfg.generation.constrained and cfg.generation.mask_consistent_logps and args.use_vllm:
        import logging

        logging.getLogger(__name__).warning(
            "groundkit: vLLM rollouts are constrained by one regex; mask-consistent log-probs apply only to "
            "transformers rollouts (see docs/training.md)")
    cls = trainer_class or _grpo_trainer_class()
    g = cfg.generation
    try:
        trainer = cls(model=loaded.model, reward_funcs=funcs, args=args, train_dataset=dataset,
                      processing_class=loaded.processor, peft_config=peft_config(cfg, loaded),
                      callbacks=[config_callback(cfg), *diagnostic_callbacks(
                          cfg, loaded.processor, reference_rows(examples, grammar, cfg.diagnostics.image_reliance_rows,
                                                                    cfg.format.instruction))],
                      grammar=grammar, constrained=g.constrained,
                      mask_consistent_logps=g.mask_consistent_logps, decoding_backend=g.backend)
    except ValueError as exc:
        if "generation" in str(exc) or "batch" in str(exc):
            raise ConfigError("trl", f"GRPOTrainer rejected the batch settings: {exc}") from exc
        raise
    return TrainingRun(trainer, loaded, grammar, Path(cfg.output_dir), cfg)
