"""Checkpoints saved by groundkit load with stock transformers classes and with groundkit alike.

The Qwen-VL processors groundkit builds leave out the video processor (it needs torchvision);
what they save must still name the stock classes, so a shared checkpoint loads with
``AutoProcessor`` where torchvision is installed and fails loudly (never as a bare tokenizer)
where it is not.
"""

from __future__ import annotations

import importlib.util
import json

import pytest
import torch

import groundkit as gk

HAS_TORCHVISION = importlib.util.find_spec("torchvision") is not None

STOCK = {  # backbone -> (stock processor class, stock video processor class or None)
    "qwen2-vl": ("Qwen2VLProcessor", "Qwen2VLVideoProcessor"),
    "qwen2.5-vl": ("Qwen2_5_VLProcessor", "Qwen2VLVideoProcessor"),
    "qwen3-vl": ("Qwen3VLProcessor", "Qwen3VLVideoProcessor"),
    "gemma3": ("Gemma3Processor", None),
}


@pytest.fixture(scope="module", params=sorted(STOCK))
def checkpoint(request, tmp_path_factory):
    tiny = gk.load_model(f"tiny:{request.param}")
    path = tiny.save(tmp_path_factory.mktemp(request.param) / "ckpt")
    return request.param, tiny, path


def read(path):
    return json.loads(path.read_text(encoding="utf-8"))


def test_saved_configs_name_the_stock_processor_class(checkpoint):
    name, _, path = checkpoint
    processor, video = STOCK[name]
    assert read(path / "processor_config.json")["processor_class"] == processor
    assert read(path / "tokenizer_config.json")["processor_class"] == processor
    if video:
        entry = read(path / "processor_config.json")["video_processor"]
        image = read(path / "processor_config.json")["image_processor"]
        assert entry["video_processor_type"] == video
        assert (entry["patch_size"], entry["merge_size"]) == (image["patch_size"], image["merge_size"])


def test_stock_auto_model_loads_the_same_weights(checkpoint):
    from transformers import AutoModelForImageTextToText

    _, tiny, path = checkpoint
    model = AutoModelForImageTextToText.from_pretrained(path, local_files_only=True)
    assert type(model) is type(tiny.model)
    saved = dict(tiny.model.named_parameters())
    for n, p in model.named_parameters():
        assert torch.equal(p, saved[n]), n


def test_stock_tokenizer_and_image_processor_load(checkpoint):
    from transformers import AutoImageProcessor, AutoTokenizer

    _, tiny, path = checkpoint
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    assert tokenizer("a <think> b").input_ids == tiny.tokenizer("a <think> b").input_ids
    image = AutoImageProcessor.from_pretrained(path, local_files_only=True)
    assert image.to_dict() == tiny.processor.image_processor.to_dict()


def test_stock_auto_processor_is_the_stock_processor_or_says_what_is_missing(checkpoint):
    from transformers import AutoProcessor

    name, _, path = checkpoint
    processor, video = STOCK[name]
    if video and not HAS_TORCHVISION:
        with pytest.raises(ImportError, match="(?i)torchvision"):
            AutoProcessor.from_pretrained(path, local_files_only=True)
        return
    loaded = AutoProcessor.from_pretrained(path, local_files_only=True)
    assert type(loaded).__name__ == processor and type(loaded).__module__.startswith("transformers.")
    assert loaded.image_processor is not None and loaded.tokenizer is not None


def test_stock_processor_class_from_pretrained_does_not_fail_on_a_missing_video_config(checkpoint):
    import transformers

    name, _, path = checkpoint
    processor, video = STOCK[name]
    cls = getattr(transformers, processor)
    if video and not HAS_TORCHVISION:
        with pytest.raises(ImportError, match="(?i)torchvision"):
            cls.from_pretrained(path, local_files_only=True)
    else:
        assert type(cls.from_pretrained(path, local_files_only=True)) is cls


def test_groundkit_loads_the_checkpoint_back(checkpoint):
    name, tiny, path = checkpoint
    loaded = gk.load_model(str(path))
    assert loaded.backbone.name == name
    assert type(loaded.processor).__name__ == STOCK[name][0]
    assert loaded.processor.chat_template == tiny.processor.chat_template
    assert loaded.processor.image_processor.to_dict() == tiny.processor.image_processor.to_dict()


def test_processor_save_pretrained_alone_names_the_stock_class(tmp_path):
    """TRL's ``trainer.save_model`` saves ``processing_class.save_pretrained``, not ``LoadedModel.save``."""
    tiny = gk.load_model("tiny:qwen2.5-vl")
    tiny.processor.save_pretrained(tmp_path)
    assert read(tmp_path / "processor_config.json")["processor_class"] == "Qwen2_5_VLProcessor"
    assert read(tmp_path / "tokenizer_config.json")["processor_class"] == "Qwen2_5_VLProcessor"
    assert read(tmp_path / "processor_config.json")["video_processor"]["video_processor_type"] == "Qwen2VLVideoProcessor"


def test_a_checkpoint_fine_tuned_with_trl_loads_with_stock_classes_and_groundkit(tmp_path):
    """groundkit save -> groundkit load -> TRL SFT (full fine-tuning) -> trainer.save_model -> load anywhere."""
    from transformers import AutoModelForImageTextToText

    from groundkit.scenes import generate_scenes
    from groundkit.training import build_sft
    from groundkit.training.common import finish
    from groundkit.training.config import load_config

    generate_scenes(tmp_path / "scenes", 2, seed=1, size="tiny")
    start = gk.load_model("tiny:qwen2.5-vl").save(tmp_path / "start")
    out = tmp_path / "sft"
    cfg = load_config({"model": {"path": str(start)}, "data": {"train": str(tmp_path / "scenes" / "scenes.jsonl"), "traces": "oracle"},
                       "lora": {"enabled": False},
                       "trl": {"output_dir": str(out), "max_steps": 1, "per_device_train_batch_size": 2, "use_cpu": True,
                               "save_strategy": "no", "report_to": "none"}}, "sft")
    run = build_sft(cfg)
    finish(run.trainer, cfg)
    assert read(out / "processor_config.json")["processor_class"] == "Qwen2_5_VLProcessor"
    assert read(out / "tokenizer_config.json")["processor_class"] == "Qwen2_5_VLProcessor"
    model = AutoModelForImageTextToText.from_pretrained(out, local_files_only=True)
    assert type(model).__name__ == "Qwen2_5_VLForConditionalGeneration"
    assert gk.load_model(str(out)).backbone.name == "qwen2.5-vl"
