"""Backbones: VLM families as plugins (model + processor loading, prompts, frames, LoRA targets)."""

from groundkit.backbones.generation import generate  # noqa: E402 (uses loading + prompts)
from groundkit.backbones.loading import Backbone, BackboneError, LoadedModel, detect_backbone, load_model
from groundkit.backbones.prompts import (
    GEMMA_CHAT_TEMPLATE,
    INSTRUCTION_MODES,
    QWEN_CHAT_TEMPLATE,
    example_trace,
    grounding_instruction,
    prompt_instruction,
)
from groundkit.backbones.tokenizers import (
    find_qwen2_tokenizer_dir,
    qwen_tokenizer,
    sentencepiece_tokenizer,
    train_tokenizer,
)

__all__ = [
    "GEMMA_CHAT_TEMPLATE", "INSTRUCTION_MODES", "QWEN_CHAT_TEMPLATE", "Backbone", "BackboneError", "LoadedModel", "detect_backbone",
    "example_trace", "generate", "find_qwen2_tokenizer_dir", "grounding_instruction", "load_model", "prompt_instruction", "qwen_tokenizer",
    "sentencepiece_tokenizer", "train_tokenizer",
]
