"""SFT on tiny backbones (CPU) and the training config: typed errors naming the key."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("trl")
pytest.importorskip("peft")

import torch  # noqa: E402

from groundkit.training import ConfigError, load_config  # noqa: E402


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    from groundkit.scenes import generate_scenes

    out = tmp_path_factory.mktemp("sft-scenes")
    generate_scenes(out, 4, seed=1, size="tiny")
    return out / "scenes.jsonl"


def base(train, out, model="tiny:gemma3", **extra):
    cfg = {"model": {"path": model}, "data": {"train": str(train), "traces": "oracle"},
           "format": {"types": ["point", "box"]}, "lora": {"r": 4, "alpha": 8},
           "trl": {"output_dir": str(out), "max_steps": 2, "per_device_train_batch_size": 2, "use_cpu": True,
                   "logging_steps": 1, "save_steps": 2, "learning_rate": 1e-2}}
    cfg.update(extra)
    return cfg


def lora_state(model):
    return {n: p.detach().clone() for n, p in model.named_parameters() if "lora_" in n}


@pytest.mark.parametrize("model", ["tiny:gemma3", "tiny:qwen2.5-vl"])
def test_sft_two_steps_completion_only_lora_changes(scenes, tmp_path, model):
    from groundkit.training import build_sft
    from groundkit.training.common import finish

    cfg = load_config(base(scenes, tmp_path / "sft", model), "sft")
    run = build_sft(cfg)
    trainer = run.trainer
    batch = next(iter(trainer.get_train_dataloader()))
    labels, ids = batch["labels"], batch["input_ids"]
    tokenizer = run.loaded.tokenizer
    for row in range(ids.size(0)):
        trained = ids[row][labels[row] != -100]
        text = tokenizer.decode(trained, skip_special_tokens=False)
        assert text.startswith("<think>") and "</answer>" in text  # the completion only, never the prompt
        assert "Answer the question" not in text
        prompt_part = tokenizer.decode(ids[row][: (labels[row] != -100).nonzero()[0, 0]], skip_special_tokens=False)
        assert "Answer the question" in prompt_part
    before = lora_state(trainer.model)
    assert before
    finish(trainer, cfg)
    losses = [h["loss"] for h in run.log_history if "loss" in h]
    assert len(losses) == 2 and all(torch.isfinite(torch.tensor(losses)))
    after = lora_state(trainer.model)
    assert any(not torch.equal(before[n], after[n]) for n in before)
    ckpt = tmp_path / "sft" / "checkpoint-2"
    assert (ckpt / "adapter_model.safetensors").exists() and (ckpt / "groundkit_config.yaml").exists()
    saved = load_config(ckpt / "groundkit_config.yaml")
    assert saved.kind == "sft" and saved.model.path == model


def test_sft_traces_from_the_dataset_are_converted_and_checked(scenes, tmp_path):
    from groundkit import GroundTruth, load_model
    from groundkit.backbones.generation import resolve_format
    from groundkit.scenes.simulate import NoisyOracle
    from groundkit.text.formatter import convert
    from groundkit.training.config import load_config as load
    from groundkit.training.data import read_examples, sft_dataset

    rows = [json.loads(line) for line in scenes.read_text().splitlines()]
    for r in rows:
        r["completion"] = NoisyOracle(wrong=0, invalid=0, dialect="qwen-json").complete(GroundTruth.from_dict(r))
    path = scenes.parent / "traces.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    loaded = load_model("tiny:gemma3")
    grammar = resolve_format(loaded, None, None, ["point", "box"])
    ds = sft_dataset(read_examples(path, trace_field="completion"), grammar, "dataset", trace_dialect="qwen-json")
    first = ds[0]["completion"][0]["content"]
    size = (rows[0]["width"], rows[0]["height"])
    assert first == convert(rows[0]["completion"], "qwen-json", "groundkit", image_size=size)
    bad = scenes.parent / "bad.jsonl"
    bad.write_text(json.dumps({**rows[0], "id": "r-bad", "completion": "<think>oops"}) + "\n")
    with pytest.raises(Exception, match="r-bad"):
        sft_dataset(read_examples(bad), grammar, "dataset")
    assert load(base(path, tmp_path), "sft").data.traces == "oracle"


@pytest.mark.parametrize("bad, key", [
    ({"lora": {"rank": 4}}, "lora.rank"),
    ({"lora": {"r": "four"}}, "lora.r"),
    ({"generation": {"num_generations": 1}}, "generation.num_generations"),
    ({"rewards": {"format": 1.0, "nope": 1.0}}, "rewards.nope"),
    ({"trl": {"not_an_arg": 1}}, "trl.not_an_arg"),
    ({"trl": {"num_generations": 4}}, "trl.num_generations"),
    ({"format": {"dialect": "klingon"}}, "format.dialect"),
    ({"unknown_section": {}}, "unknown_section"),
])
def test_config_errors_name_the_key(tmp_path, bad, key):
    from groundkit.training.grpo import grpo_arguments

    cfg = {"model": {"path": "tiny:gemma3"}, "data": {"train": "x.jsonl"}, **bad}
    with pytest.raises(ConfigError) as err:
        loaded = load_config(cfg, "grpo")
        grpo_arguments(loaded, None, [1.0])
    assert err.value.key == key and key in str(err.value)


def test_config_from_yaml_and_rewards_spec(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("model: {path: tiny:gemma3}\ndata: {train: d.jsonl}\nrewards: format,answer,point_f1:0.5\n"
                    "trl: {learning_rate: 1.0e-5}\n")
    cfg = load_config(path, "grpo")
    assert cfg.rewards == {"format": 1.0, "answer": 1.0, "point_f1": 0.5}
    assert cfg.trl["learning_rate"] == 1e-5 and cfg.generation.mask_consistent_logps is True
    with pytest.raises(ConfigError, match="model.path"):
        load_config({"data": {"train": "x"}}, "sft")


def test_every_shipped_training_config_loads():
    import yaml
    from conftest import REPO

    configs = sorted((REPO / "examples" / "configs").glob("*.yaml"))
    assert len(configs) >= 6
    for path in configs:
        kind = "sft" if path.name.startswith("sft") else "grpo"
        cfg = load_config(path, kind)
        assert cfg.trl.get("output_dir"), path.name
    for name in ("ddp", "zero2", "zero3"):
        assert yaml.safe_load((REPO / "examples" / "configs" / "accelerate" / f"{name}.yaml").read_text())["distributed_type"]


def test_cli_train_sft_one_step_and_typed_errors(scenes, tmp_path):
    import yaml
    from typer.testing import CliRunner

    from groundkit.cli import app

    cfg = base(scenes, tmp_path / "cli")
    path = tmp_path / "sft.yaml"
    path.write_text(yaml.safe_dump(cfg))
    result = CliRunner().invoke(app, ["train", "sft", "--config", str(path), "--set", "trl.max_steps=1", "--set", "trl.save_strategy='no'"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output.strip().splitlines()[-1])["global_step"] == 1
    bad = CliRunner().invoke(app, ["train", "grpo", "--config", str(path), "--set", "lora.rnk=3"])
    assert bad.exit_code == 1 and "lora.rnk" in bad.output
