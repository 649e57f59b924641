"""The gemma3 backbone: groundkit dialect, rel-1000 (Gemma3 squashes images to a square, so normalised coordinates map linearly)."""

import json
from pathlib import Path

from groundkit import (
    GEMMA_CHAT_TEMPLATE,
    Backbone,
    ImageSize,
    LoadedModel,
    ModelSize,
    hookimpl,
    sentencepiece_tokenizer,
)


class Gemma3(Backbone):
    name = "gemma3"
    description = "Gemma 3 (IT): groundkit dialect, rel-1000; SigLIP images squashed to a square"
    model_types = ("gemma3",)
    native_dialect = "groundkit"

    def model_class(self):
        from transformers import Gemma3ForConditionalGeneration

        return Gemma3ForConditionalGeneration

    def image_processor_class(self):
        from transformers.models.gemma3.image_processing_pil_gemma3 import Gemma3ImageProcessorPil

        return Gemma3ImageProcessorPil

    def build_processor(self, tokenizer, image_processor, chat_template, image_seq_length=256):
        from transformers.models.gemma3.processing_gemma3 import Gemma3Processor

        tokenizer.padding_side = "left"
        return Gemma3Processor(image_processor, tokenizer, chat_template=chat_template, image_seq_length=image_seq_length)

    def load(self, path, dtype=None, device=None, quantization=None):
        loaded = super().load(path, dtype, device, quantization)
        seq = json.loads((Path(path) / "config.json").read_text()).get("mm_tokens_per_image", 256)
        config = Path(path) / "processor_config.json"
        if config.exists():
            seq = json.loads(config.read_text()).get("image_seq_length", seq)
        p = loaded.processor
        loaded.processor = self.build_processor(p.tokenizer, p.image_processor, p.chat_template, image_seq_length=seq)
        return loaded

    def processor_inputs(self, processor, prompts, images):
        return processor(text=prompts, images=[[img] for img in images], padding=True, return_tensors="pt")

    def input_size(self, processor, size):
        s = processor.image_processor.size
        return ImageSize(s["width"], s["height"])

    def tiny(self, seed=0, tokenizer_dir=None, *, tokenizer=None, size=None):
        import math

        import torch
        from transformers import Gemma3Config

        torch.manual_seed(seed)
        tokenizer = tokenizer if tokenizer is not None else sentencepiece_tokenizer()
        size = size or ModelSize(vision_layers=1, image_tokens=4)
        side = max(1, math.isqrt(size.image_tokens))  # image tokens = side x side after pooling
        patches = side * 2  # 2x2 average pooling of a (patches x patches) SigLIP grid
        image_processor = self.image_processor_class()(size={"height": patches * 16, "width": patches * 16})
        processor = self.build_processor(tokenizer, image_processor, GEMMA_CHAT_TEMPLATE, image_seq_length=side * side)
        tid = tokenizer.convert_tokens_to_ids
        config = Gemma3Config(
            text_config=dict(vocab_size=len(tokenizer), hidden_size=size.hidden, intermediate_size=size.intermediate,
                             num_hidden_layers=size.layers, num_attention_heads=size.heads, num_key_value_heads=size.kv_heads,
                             head_dim=size.head_dim, sliding_window=64, max_position_embeddings=4096),
            vision_config=dict(model_type="siglip_vision_model", hidden_size=size.vision_hidden,
                               intermediate_size=2 * size.vision_hidden, num_hidden_layers=size.vision_layers,
                               num_attention_heads=size.vision_heads, image_size=patches * 16, patch_size=16),
            mm_tokens_per_image=side * side, boi_token_index=tid("<start_of_image>"), eoi_token_index=tid("<end_of_image>"),
            image_token_index=tid("<image_soft_token>"), eos_token_id=[tid("<end_of_turn>"), tid("<eos>")],
            pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
        )
        model = self.model_class()(config).eval()
        model.generation_config.eos_token_id = [tid("<end_of_turn>"), tid("<eos>")]
        model.generation_config.pad_token_id = tokenizer.pad_token_id
        return LoadedModel(self, model, processor, "tiny:gemma3")


@hookimpl
def register_backbones(register):
    register(Gemma3())
