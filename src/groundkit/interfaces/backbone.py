"""The backbone interface: what a backbone plugin implements (see ``plugins/qwen_vl.py``).

A backbone knows its transformers classes, its native dialect and frame (incl. the resize
rule), how to build a chat prompt, and which modules LoRA should target. ``tiny:<name>``
models are real transformers classes with random weights, built offline from config.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from groundkit.errors import GroundkitError
from groundkit.frames import ImageSize


class BackboneError(GroundkitError):
    """A model could not be loaded, detected or prompted."""


@dataclass(frozen=True)
class ModelSize:
    """The size of a model built from config (:meth:`Backbone.tiny`): the language model, the
    vision tower and the most image tokens per image. The defaults are the test-sized tiny model;
    an experiment trains a larger one from scratch (``groundkit experiment counting``)."""

    hidden: int = 32
    layers: int = 2
    heads: int = 2
    kv_heads: int = 1
    intermediate: int = 64
    vision_hidden: int = 32
    vision_layers: int = 2
    vision_heads: int = 2
    image_tokens: int = 64  # most image tokens (after merging) one image becomes

    def __post_init__(self) -> None:
        for name in ("hidden", "layers", "heads", "kv_heads", "intermediate", "vision_hidden", "vision_layers",
                     "vision_heads", "image_tokens"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise BackboneError(f"model size {name}={value!r}: must be a positive integer")
        if self.hidden % self.heads or (self.hidden // self.heads) % 8:
            raise BackboneError(f"model size: hidden={self.hidden} must be heads={self.heads} x a multiple of 8")
        if self.heads % self.kv_heads:
            raise BackboneError(f"model size: heads={self.heads} must be a multiple of kv_heads={self.kv_heads}")
        if self.vision_hidden % self.vision_heads:
            raise BackboneError(f"model size: vision_hidden={self.vision_hidden} must be a multiple of vision_heads")

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads


@dataclass
class LoadedModel:
    """A model, its processor and the backbone that built them."""

    backbone: Backbone
    model: Any
    processor: Any
    source: str

    @property
    def tokenizer(self) -> Any:
        return self.processor.tokenizer

    def native_frame(self) -> str:
        return self.backbone.native_frame(self.processor)

    def input_size(self, size: ImageSize) -> ImageSize:
        """The size of the image the model actually sees (after the processor's resize)."""
        return self.backbone.input_size(self.processor, size)

    def save(self, path: str | Path) -> Path:
        """Save model + processor so :meth:`Backbone.load` reads them back (a local checkpoint)."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        self.model.save_pretrained(path)
        self.processor.save_pretrained(path)
        return path


class Backbone:
    """Base class of backbone plugins (see ``plugins/qwen_vl.py`` and ``plugins/gemma3.py``)."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    model_types: ClassVar[tuple[str, ...]] = ()  # config.json "model_type" values this backbone loads
    native_dialect: ClassVar[str] = "groundkit"
    #: LoRA targets: attention/MLP projections of the language model only (never the vision tower).
    lora_target_modules: ClassVar[str] = (
        r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)"
    )

    # --- to implement ----------------------------------------------------------------------
    def model_class(self) -> Any:
        raise NotImplementedError

    def build_processor(self, tokenizer: Any, image_processor: Any, chat_template: str | None) -> Any:
        raise NotImplementedError

    def image_processor_class(self) -> Any:
        raise NotImplementedError

    def tiny(self, seed: int = 0, tokenizer_dir: str | Path | None = None, *, tokenizer: Any = None,
             size: ModelSize | None = None) -> LoadedModel:
        """A random-initialised model of the real class with a working processor (offline).

        ``tokenizer`` (a transformers tokenizer with the backbone's special tokens) replaces the
        default one; ``size`` the default test-sized dimensions."""
        raise NotImplementedError

    def native_frame(self, processor: Any) -> str:
        return "rel-1000"

    def input_size(self, processor: Any, size: ImageSize) -> ImageSize:
        raise NotImplementedError

    # --- shared ----------------------------------------------------------------------------
    def load(
        self,
        path: str | Path,
        dtype: str | None = None,
        device: str | None = None,
        quantization: str | None = None,
    ) -> LoadedModel:
        """Load model + processor from a local checkpoint directory (never from a hub)."""
        import torch
        from transformers import AutoTokenizer

        path = Path(path)
        if not (path / "config.json").exists():
            raise BackboneError(f"{path} is not a checkpoint directory (no config.json)")
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        image_processor = self.image_processor_class().from_pretrained(path, local_files_only=True)
        processor = self.build_processor(tokenizer, image_processor, read_chat_template(path) or tokenizer.chat_template)
        kwargs: dict[str, Any] = {"local_files_only": True}
        if dtype:
            kwargs["dtype"] = getattr(torch, dtype) if dtype != "auto" else "auto"
        if quantization:
            kwargs["quantization_config"] = quantization_config(quantization)
        if device and device != "cpu":
            kwargs["device_map"] = device
        model = self.model_class().from_pretrained(path, **kwargs).eval()
        return LoadedModel(self, model, processor, str(path))

    def prompt(self, processor: Any, question: str, instruction: str | None) -> str:
        """The chat prompt (text, with the image placeholder) for one question; no system message
        when ``instruction`` is None."""
        messages = [] if instruction is None else [{"role": "system", "content": [{"type": "text", "text": instruction}]}]
        messages.append({"role": "user", "content": [{"type": "image"}, {"type": "text", "text": question}]})
        return processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)

    def processor_inputs(self, processor: Any, prompts: list[str], images: list[Any]) -> Any:
        """Batch inputs (padded on the left) for prompts with one image each."""
        return processor(text=prompts, images=images, padding=True, return_tensors="pt")

    #: Parameters of the vision tower (not of the vision-language merger/projector): ``model.freeze_vision``.
    vision_tower_pattern: ClassVar[str] = r"(.*\.)?(visual|vision_tower|vision_model)\.(?!.*merger).*"

    def vision_tower_parameters(self, model: Any) -> list[Any]:
        """The vision tower's parameters, without the merger/projector that feeds the language model.

        Training a VLM from scratch, a vision tower trained at the language model's learning rate
        tends to collapse to a near-constant output (see docs/experiments.md); frozen at its
        random initialisation it keeps the pixels' information for the merger to learn from."""
        pattern = re.compile(self.vision_tower_pattern)
        return [p for n, p in model.named_parameters() if pattern.fullmatch(n)]

    def lora_targets(self, model: Any) -> list[str]:
        """Names of the modules the LoRA regex selects in ``model``."""
        pattern = re.compile(self.lora_target_modules)
        return [n for n, _ in model.named_modules() if pattern.fullmatch(n)]


def read_chat_template(path: Path) -> str | None:
    """A checkpoint's chat template (chat_template.jinja or chat_template.json), if it has one."""
    if (path / "chat_template.jinja").exists():
        return (path / "chat_template.jinja").read_text(encoding="utf-8")
    if (path / "chat_template.json").exists():
        return json.loads((path / "chat_template.json").read_text(encoding="utf-8")).get("chat_template")
    return None


def quantization_config(kind: str) -> Any:
    """A bitsandbytes config for ``4bit`` / ``8bit`` (needs bitsandbytes and a GPU)."""
    from transformers import BitsAndBytesConfig

    if kind not in ("4bit", "8bit"):
        raise BackboneError(f"quantization must be 4bit or 8bit, got {kind!r}")
    try:
        import bitsandbytes  # noqa: F401
    except ImportError as exc:
        raise BackboneError(f"{kind} quantization needs the bitsandbytes package (and a CUDA GPU)") from exc
    return BitsAndBytesConfig(load_in_4bit=kind == "4bit", load_in_8bit=kind == "8bit")
