"""Image reliance: the loss with images swapped across a held batch minus the true-image loss."""

from __future__ import annotations

import math

import pytest

pytest.importorskip("trl")

import torch  # noqa: E402

from groundkit.training.diagnostics import image_reliance, vision_collator  # noqa: E402


@pytest.fixture(scope="module")
def rows():
    from PIL import Image

    colours = [(220, 30, 30), (30, 200, 40), (30, 60, 220), (230, 200, 20)]
    return [{"prompt": [{"role": "system", "content": "Name the colour."}, {"role": "user", "content": "Which colour?"}],
             "completion": [{"role": "assistant", "content": f"<think>It is colour {i}.</think><answer>{i}</answer>"}],
             "images": [Image.new("RGB", (56, 56), c)]} for i, c in enumerate(colours)]


def _tiny():
    from groundkit import get_registry

    return get_registry().backbone("qwen2.5-vl").tiny(seed=3)


def test_image_reliance_is_nonzero_when_the_image_reaches_the_model(rows):
    loaded = _tiny()
    values = image_reliance(loaded.model, vision_collator(loaded.processor), rows)
    assert math.isfinite(values["loss_true_images"]) and math.isfinite(values["loss_swapped_images"])
    assert values["image_reliance"] == pytest.approx(values["loss_swapped_images"] - values["loss_true_images"])
    assert abs(values["image_reliance"]) > 1e-6  # random weights: different images, different loss


def test_image_reliance_is_zero_for_a_vision_blind_model(rows):
    loaded = _tiny()
    with torch.no_grad():  # the merger's last layer outputs zeros: every image becomes the same features
        last = [m for m in loaded.model.modules() if isinstance(m, torch.nn.Linear)]
        merger = [m for name, m in loaded.model.named_modules() if "merger" in name and isinstance(m, torch.nn.Linear)][-1]
        merger.weight.zero_()
        merger.bias.zero_()
    assert last
    values = image_reliance(loaded.model, vision_collator(loaded.processor), rows)
    assert values["image_reliance"] == pytest.approx(0.0, abs=1e-6)


def test_image_reliance_needs_two_rows(rows):
    loaded = _tiny()
    with pytest.raises(ValueError, match="at least 2"):
        image_reliance(loaded.model, vision_collator(loaded.processor), rows[:1])


def test_sft_logs_image_reliance_and_config_rejects_bad_settings(tmp_path):
    from groundkit.scenes import generate_scenes
    from groundkit.training import ConfigError, load_config, train_sft

    generate_scenes(tmp_path / "scenes", 4, seed=2, size="tiny")
    cfg = {"model": {"path": "tiny:qwen2.5-vl"}, "lora": {"enabled": False},
           "data": {"train": str(tmp_path / "scenes" / "scenes.jsonl"), "traces": "oracle"}, "format": {"types": ["point"]},
           "diagnostics": {"image_reliance_every": 1, "image_reliance_rows": 3},
           "trl": {"output_dir": str(tmp_path / "out"), "max_steps": 2, "per_device_train_batch_size": 2, "use_cpu": True,
                   "save_strategy": "no"}}
    run = train_sft(cfg)
    logged = [h for h in run.log_history if "groundkit/image_reliance" in h]
    assert [h["step"] for h in logged] == [0, 1, 2]
    assert all(math.isfinite(h["groundkit/image_reliance"]) for h in logged)
    with pytest.raises(ConfigError, match="diagnostics.image_reliance_rows"):
        load_config({**cfg, "diagnostics": {"image_reliance_rows": 1}}, "sft")
    with pytest.raises(ConfigError, match="diagnostics.image_reliance_every"):
        load_config({**cfg, "diagnostics": {"image_reliance_every": -1}}, "sft")
