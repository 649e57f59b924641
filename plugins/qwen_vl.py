"""Qwen-VL backbones: qwen2-vl (qwen2vl, rel-1000), qwen2.5-vl (qwen-json, resized pixels), qwen3-vl (qwen-json, rel-1000)."""

from functools import cache

from groundkit import (
    QWEN_CHAT_TEMPLATE,
    Backbone,
    BackboneError,
    ImageSize,
    LoadedModel,
    ModelSize,
    hookimpl,
    qwen_tokenizer,
    resize_params,
    resized_frame_spec,
    smart_resize,
)

TINY_TEXT = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=4096)


@cache
def processor_without_video(module: str, name: str, video_processor: str):
    """The family's processor class minus the video processor (which needs torchvision).

    It saves as the stock class: ``processor_class`` names ``name`` (in processor_config.json and
    tokenizer_config.json) and processor_config.json carries a ``video_processor`` entry of type
    ``video_processor`` built from the image processor's settings, so stock
    ``AutoProcessor.from_pretrained`` loads the stock processor where torchvision is installed
    (and says torchvision is missing where it is not). ``LoadedModel.save`` and TRL's
    ``trainer.save_model`` both write through :meth:`to_dict` and ``save_pretrained``."""
    import importlib

    base = getattr(importlib.import_module(module), name)

    class Processor(base):
        def __init__(self, image_processor=None, tokenizer=None, chat_template=None, **kwargs):
            super().__init__(image_processor, tokenizer, None, chat_template=chat_template, **kwargs)

        def to_dict(self):
            output = super().to_dict()
            output["video_processor"] = video_processor_config(self.image_processor, video_processor)
            return output

    # The stock name is what transformers writes as ``processor_class`` (ProcessorMixin uses __name__).
    Processor.__name__ = name
    Processor.__qualname__ = f"processor_without_video.<{name}>"
    return Processor


def video_processor_config(image_processor, video_processor: str) -> dict:
    """A stock video-processor config matching ``image_processor`` (patch, merge and pixel settings)."""
    config = {k: v for k, v in image_processor.to_dict().items() if k not in ("image_processor_type", "processor_class")}
    return dict(config, video_processor_type=video_processor)


class QwenVL(Backbone):
    """Shared Qwen-VL logic; subclasses name their classes, native format and tiny config."""

    processor_module = ""
    processor_name = ""
    video_processor_name = "Qwen2VLVideoProcessor"  # the stock video processor named in saved configs
    model_name = ""
    config_name = ""
    patch_size = 14
    tiny_vision: dict = {}
    tiny_rope: dict = {}

    def model_class(self):
        import transformers

        return getattr(transformers, self.model_name)

    def image_processor_class(self):
        from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

        return Qwen2VLImageProcessorPil

    def build_processor(self, tokenizer, image_processor, chat_template):
        tokenizer.padding_side = "left"
        cls = processor_without_video(self.processor_module, self.processor_name, self.video_processor_name)
        return cls(image_processor=image_processor, tokenizer=tokenizer, chat_template=chat_template)

    def resize_rule(self, processor):
        """(factor, min_pixels, max_pixels) from the loaded image processor's config."""
        params = resize_params(processor.image_processor)
        if params is None:
            name = type(processor.image_processor).__name__
            raise BackboneError(f"{name} has no smart_resize settings (patch_size, merge_size, min/max pixels)")
        return params["factor"], params["min_pixels"], params["max_pixels"]

    def input_size(self, processor, size):
        factor, lo, hi = self.resize_rule(processor)
        h, w = smart_resize(size.height, size.width, factor, lo, hi)
        return ImageSize(w, h)

    def tiny(self, seed=0, tokenizer_dir=None, *, tokenizer=None, size=None):
        import torch
        import transformers

        torch.manual_seed(seed)
        tokenizer = tokenizer if tokenizer is not None else qwen_tokenizer(tokenizer_dir)
        size = size or ModelSize(vision_layers=self.tiny_vision.get("depth", 2))
        factor = self.patch_size * 2
        image_processor = self.image_processor_class()(patch_size=self.patch_size, min_pixels=factor**2 * 4,
                                                       max_pixels=factor**2 * size.image_tokens)
        processor = self.build_processor(tokenizer, image_processor, QWEN_CHAT_TEMPLATE)
        ids = {t: tokenizer.convert_tokens_to_ids(t) for t in ("<|image_pad|>", "<|video_pad|>", "<|vision_start|>", "<|vision_end|>")}
        vocab = 151936 if len(tokenizer) > 151936 // 2 else len(tokenizer)
        text = dict(TINY_TEXT, hidden_size=size.hidden, intermediate_size=size.intermediate, num_hidden_layers=size.layers,
                    num_attention_heads=size.heads, num_key_value_heads=size.kv_heads, vocab_size=vocab,
                    head_dim=size.head_dim, rope_parameters=dict(self.tiny_rope, mrope_section=mrope_section(size.head_dim,
                                                                 self.tiny_rope["mrope_section"])))
        config = getattr(transformers, self.config_name)(
            vision_config=self.vision_config(size), text_config=text,
            image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
            vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
            eos_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>"), pad_token_id=tokenizer.pad_token_id,
        )
        model = self.model_class()(config).eval()
        balance_position_embeddings(model)
        model.generation_config.eos_token_id = [tokenizer.convert_tokens_to_ids("<|im_end|>"), tokenizer.eos_token_id]
        model.generation_config.pad_token_id = tokenizer.pad_token_id
        return LoadedModel(self, model, processor, f"tiny:{self.name}")

    def vision_config(self, size):
        """The tiny vision tower at ``size`` (depth, width, heads; output width = the language model's)."""
        v = dict(self.tiny_vision, depth=size.vision_layers, num_heads=size.vision_heads)
        if "embed_dim" in v:  # qwen2-vl
            return dict(v, embed_dim=size.vision_hidden, hidden_size=size.hidden)
        v.update(hidden_size=size.vision_hidden, intermediate_size=2 * size.vision_hidden, out_hidden_size=size.hidden)
        if "fullatt_block_indexes" in v:  # qwen2.5-vl: the last block attends to the whole image
            v["fullatt_block_indexes"] = [size.vision_layers - 1]
        if "deepstack_visual_indexes" in v:  # qwen3-vl
            v["deepstack_visual_indexes"] = [size.vision_layers - 1]
        return v


def balance_position_embeddings(model):
    """Initialise a vision tower's learned absolute position embeddings (Qwen3-VL) at the scale of
    its patch embeddings. At the default std of 0.02 they are ~25x weaker than the patch content,
    so a from-scratch tower hardly tells where anything is, which pointing needs."""
    import torch

    visual = getattr(getattr(model, "model", model), "visual", None)
    if visual is None or not hasattr(visual, "pos_embed"):
        return
    proj = visual.patch_embed.proj
    with torch.no_grad():
        probe = torch.randn(64, proj.in_channels, *proj.kernel_size, generator=torch.Generator().manual_seed(0))
        scale = proj(probe.to(proj.weight.dtype)).std().item()
        visual.pos_embed.weight.normal_(0.0, scale)


def mrope_section(head_dim, default):
    """Multimodal RoPE sections (time, height, width) summing to head_dim / 2, in the default's proportions."""
    half = head_dim // 2
    if sum(default) == half:
        return list(default)
    t = max(1, round(half * default[0] / sum(default)))
    h = (half - t) // 2
    return [t, h, half - t - h]


class Qwen2VL(QwenVL):
    name = "qwen2-vl"
    description = "Qwen2-VL: special-token boxes (qwen2vl dialect), rel-1000"
    model_types = ("qwen2_vl",)
    native_dialect = "qwen2vl"
    processor_module = "transformers.models.qwen2_vl.processing_qwen2_vl"
    processor_name = "Qwen2VLProcessor"
    model_name = "Qwen2VLForConditionalGeneration"
    config_name = "Qwen2VLConfig"
    tiny_vision = dict(depth=1, embed_dim=32, num_heads=2, hidden_size=32, mlp_ratio=2, patch_size=14, spatial_merge_size=2)
    tiny_rope = {"rope_type": "default", "mrope_section": [2, 2, 4], "rope_theta": 10000.0}


class Qwen25VL(QwenVL):
    name = "qwen2.5-vl"
    description = "Qwen2.5-VL: JSON bbox_2d/point_2d (qwen-json), absolute pixels of the resized input"
    model_types = ("qwen2_5_vl",)
    native_dialect = "qwen-json"
    processor_module = "transformers.models.qwen2_5_vl.processing_qwen2_5_vl"
    processor_name = "Qwen2_5_VLProcessor"
    model_name = "Qwen2_5_VLForConditionalGeneration"
    config_name = "Qwen2_5_VLConfig"
    tiny_vision = dict(depth=2, hidden_size=32, intermediate_size=64, num_heads=2, out_hidden_size=32, patch_size=14,
                       spatial_merge_size=2, window_size=56, fullatt_block_indexes=[1])
    tiny_rope = {"rope_type": "default", "mrope_section": [2, 2, 4], "rope_theta": 10000.0}

    def native_frame(self, processor):
        self.resize_rule(processor)  # a clear error when the processor has no smart_resize settings
        return resized_frame_spec(processor.image_processor)


class Qwen3VL(QwenVL):
    name = "qwen3-vl"
    description = "Qwen3-VL: JSON bbox_2d/point_2d (qwen-json), rel-1000"
    model_types = ("qwen3_vl",)
    native_dialect = "qwen-json"
    processor_module = "transformers.models.qwen3_vl.processing_qwen3_vl"
    processor_name = "Qwen3VLProcessor"
    video_processor_name = "Qwen3VLVideoProcessor"
    model_name = "Qwen3VLForConditionalGeneration"
    config_name = "Qwen3VLConfig"
    patch_size = 16
    tiny_vision = dict(depth=2, hidden_size=32, intermediate_size=64, num_heads=2, out_hidden_size=32, patch_size=16,
                       spatial_merge_size=2, num_position_embeddings=64, deepstack_visual_indexes=[1])
    tiny_rope = {"rope_type": "default", "mrope_section": [2, 3, 3], "mrope_interleaved": True, "rope_theta": 10000.0}


@hookimpl
def register_backbones(register):
    register(Qwen2VL())
    register(Qwen25VL())
    register(Qwen3VL())
