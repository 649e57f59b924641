"""Backbones: tiny offline models of the real classes, local checkpoints, prompts, frames, LoRA targets."""

from __future__ import annotations

import json

import pytest
import torch
from PIL import Image

import groundkit as gk
from groundkit.backbones import detect_backbone, example_trace, grounding_instruction

BACKBONES = ["gemma3", "qwen2-vl", "qwen2.5-vl", "qwen3-vl"]
NATIVE = {"gemma3": ("groundkit", "rel-1000"), "qwen2-vl": ("qwen2vl", "rel-1000"),
          "qwen2.5-vl": ("qwen-json", "abs-resized"), "qwen3-vl": ("qwen-json", "rel-1000")}
SIZES = [(300, 200), (120, 260), (640, 480), (97, 1001)]


@pytest.fixture(scope="module", params=BACKBONES)
def tiny(request):
    return gk.load_model(f"tiny:{request.param}")


def test_tiny_is_the_real_transformers_class(tiny):
    import transformers

    expected = {"gemma3": "Gemma3ForConditionalGeneration", "qwen2-vl": "Qwen2VLForConditionalGeneration",
                "qwen2.5-vl": "Qwen2_5_VLForConditionalGeneration", "qwen3-vl": "Qwen3VLForConditionalGeneration"}
    assert type(tiny.model) is getattr(transformers, expected[tiny.backbone.name])
    assert tiny.source == f"tiny:{tiny.backbone.name}"


def test_native_dialect_and_frame(tiny):
    dialect, frame = NATIVE[tiny.backbone.name]
    assert tiny.backbone.native_dialect == dialect
    assert tiny.native_frame().split(":")[0] == frame


def test_prompt_is_the_processors_chat_template_with_the_grammar_example(tiny):
    grammar = gk.get_grammar(tiny.backbone.native_dialect, tiny.native_frame())
    size = gk.ImageSize(640, 480)
    instruction = grounding_instruction(grammar, size)
    prompt = tiny.backbone.prompt(tiny.processor, "How many mugs?", instruction)
    messages = [{"role": "system", "content": [{"type": "text", "text": instruction}]},
                {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "How many mugs?"}]}]
    assert prompt == tiny.processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    example = example_trace(grammar, size)
    assert example in prompt and "How many mugs?" in prompt
    # the example in the prompt parses with the very grammar the decoder enforces
    assert gk.TraceParser(grammar).parse(example, size).groundings


def test_input_size_matches_what_the_processor_feeds_the_model(tiny):
    for w, h in SIZES:
        img = Image.new("RGB", (w, h))
        inputs = tiny.backbone.processor_inputs(tiny.processor, [tiny.backbone.prompt(tiny.processor, "q", "s")], [img])
        seen = tiny.input_size(gk.ImageSize(w, h))
        if "image_grid_thw" in inputs:
            _, gh, gw = inputs["image_grid_thw"][0].tolist()
            patch = tiny.processor.image_processor.patch_size
            assert (gw * patch, gh * patch) == (seen.width, seen.height)
        else:
            assert tuple(inputs["pixel_values"].shape[-2:]) == (seen.height, seen.width)


def test_qwen25_frame_uses_the_processors_resize_rule_and_maps_back_to_the_original():
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import smart_resize as hf_smart_resize

    tiny = gk.load_model("tiny:qwen2.5-vl")
    frame = gk.get_registry().frame(tiny.native_frame())
    ip = tiny.processor.image_processor
    for w, h in SIZES:
        size = gk.ImageSize(w, h)
        rh, rw = hf_smart_resize(h, w, ip.patch_size * ip.merge_size, ip.size["shortest_edge"], ip.size["longest_edge"])
        assert frame.bounds(size) == (rw, rh)
        # a box written in resized pixels comes back in the original image's unit frame
        text = f'<think>{{"bbox_2d": [0, 0, {rw // 2}, {rh}]}}</think><answer>1</answer>'
        box = gk.parse(text, "qwen-json", tiny.native_frame(), image_size=size).groundings[0]
        assert box.coords == pytest.approx((0, 0, (rw // 2) / rw, 1.0))


def test_save_and_load_through_the_local_checkpoint_path(tiny, tmp_path):
    path = tiny.save(tmp_path / "ckpt")
    assert json.loads((path / "config.json").read_text())["model_type"] in tiny.backbone.model_types
    loaded = gk.load_model(str(path))
    assert loaded.backbone.name == tiny.backbone.name and loaded.source == str(path)
    assert loaded.native_frame() == tiny.native_frame()
    assert loaded.backbone.prompt(loaded.processor, "q", "s") == tiny.backbone.prompt(tiny.processor, "q", "s")
    for (name, a), b in zip(tiny.model.state_dict().items(), loaded.model.state_dict().values()):
        assert torch.equal(a, b), name
    img = Image.new("RGB", (200, 150), (200, 30, 30))
    prompt = [tiny.backbone.prompt(tiny.processor, "How many?", "s")]
    a = tiny.backbone.processor_inputs(tiny.processor, prompt, [img])
    b = loaded.backbone.processor_inputs(loaded.processor, prompt, [img])
    assert torch.equal(a["input_ids"], b["input_ids"])
    with torch.no_grad():
        assert torch.allclose(tiny.model(**a).logits, loaded.model(**b).logits, atol=1e-5)


def test_lora_targets_hit_only_language_model_linear_layers(tiny):
    names = tiny.backbone.lora_targets(tiny.model)
    modules = dict(tiny.model.named_modules())
    assert names
    for name in names:
        assert isinstance(modules[name], torch.nn.Linear), name
        assert "language_model" in name and "vision" not in name and "visual" not in name
    layers = {n.split(".layers.")[1].split(".")[0] for n in names}
    assert len(layers) == tiny.model.config.get_text_config().num_hidden_layers
    for proj in ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"):
        assert sum(n.endswith(proj) for n in names) == len(layers), proj
    peft = pytest.importorskip("peft")
    wrapped = peft.get_peft_model(tiny.model, peft.LoraConfig(r=2, target_modules=tiny.backbone.lora_target_modules))
    lora = [n for n, _ in wrapped.named_modules() if n.endswith("lora_A")]
    assert len(lora) == len(names)
    wrapped.unload()


def test_generate_parses_and_keeps_original_coordinates(tiny):
    from groundkit.backbones.generation import GenerationRequest, generate

    reqs = [GenerationRequest(Image.new("RGB", s), "How many?", str(i)) for i, s in enumerate(SIZES[:2])]
    results = generate(tiny, reqs, constrained=False, max_new_tokens=6)
    assert [r.id for r in results] == ["0", "1"]
    assert [(r.image_size.width, r.image_size.height) for r in results] == SIZES[:2]
    for r in results:  # a random model writes garbage: it must be reported, not crash
        assert (r.trace is None) == (r.error is not None)


def test_backbone_detection_and_errors(tmp_path):
    reg = gk.get_registry()
    backbones = {n: reg.backbone(n) for n in reg.backbones.names()}
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "qwen2_5_vl"}))
    assert detect_backbone(tmp_path, backbones).name == "qwen2.5-vl"
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llama"}))
    with pytest.raises(gk.BackboneError, match="no backbone plugin loads model_type 'llama'"):
        gk.load_model(str(tmp_path))
    with pytest.raises(gk.BackboneError, match="no config.json"):
        gk.load_model(str(tmp_path / "missing"))
    with pytest.raises(gk.UnknownNameError, match="unknown backbone 'nope'"):
        gk.load_model("tiny:nope")
    with pytest.raises(gk.BackboneError, match="4bit or 8bit"):
        from groundkit.interfaces.backbone import quantization_config

        quantization_config("3bit")
