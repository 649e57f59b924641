"""The prompt's system message (``instruction: full | none``): training rows, generation and eval
build the same prompt, and an unknown mode is a typed error before any work."""

from __future__ import annotations

import json

import pytest
from PIL import Image
from typer.testing import CliRunner

from groundkit.backbones import prompt_instruction
from groundkit.errors import GroundkitError
from groundkit.text.grammar import get_grammar

GRAMMAR = get_grammar("groundkit", "rel-1000", ["point"])


def test_modes():
    assert prompt_instruction("none", GRAMMAR) is None
    assert "<point" in prompt_instruction("full", GRAMMAR)
    with pytest.raises(GroundkitError, match="unknown instruction mode 'short'; choose one of full, none"):
        prompt_instruction("short", GRAMMAR)


@pytest.fixture(scope="module")
def examples(tmp_path_factory):
    from groundkit.scenes import generate_scenes
    from groundkit.training.data import read_examples

    out = tmp_path_factory.mktemp("instruction-scenes")
    generate_scenes(out, 2, seed=3, size="tiny")
    return read_examples(out / "scenes.jsonl")


@pytest.mark.parametrize("mode, roles", [("full", ["system", "user"]), ("none", ["user"])])
def test_training_rows_follow_the_mode(examples, mode, roles):
    pytest.importorskip("datasets")
    from groundkit.training.data import grpo_dataset, reference_rows, sft_dataset

    for ds in (sft_dataset(examples, GRAMMAR, "oracle", instruction=mode), grpo_dataset(examples, GRAMMAR, instruction=mode)):
        assert [m["role"] for m in ds[0]["prompt"]] == roles
    assert [m["role"] for m in reference_rows(examples, GRAMMAR, 1, mode)[0]["prompt"]] == roles


@pytest.mark.parametrize("backbone", ["tiny:qwen2-vl", "tiny:gemma3"])
def test_generation_prompt_has_no_system_message_with_none(backbone):
    from groundkit.backbones import load_model

    loaded = load_model(backbone)
    full = loaded.backbone.prompt(loaded.processor, "How many?", prompt_instruction("full", GRAMMAR))
    bare = loaded.backbone.prompt(loaded.processor, "How many?", None)
    assert "Answer the question about the image" in full
    assert "Answer the question about the image" not in bare and "How many?" in bare
    assert len(loaded.processor.tokenizer(bare).input_ids) < len(loaded.processor.tokenizer(full).input_ids) - 50


def test_training_config_rejects_an_unknown_mode():
    from groundkit.training import ConfigError, load_config

    with pytest.raises(ConfigError) as err:
        load_config({"model": {"path": "tiny:gemma3"}, "data": {"train": "x.jsonl"}, "format": {"instruction": "brief"}}, "sft")
    assert err.value.key == "format.instruction" and "full, none" in str(err.value)


def test_cli_generate_takes_the_mode(tmp_path):
    from groundkit.cli import app

    runner = CliRunner()
    img = tmp_path / "img.png"
    Image.new("RGB", (64, 64), (20, 20, 200)).save(img)
    out = tmp_path / "trace.json"
    ok = runner.invoke(app, ["generate", "--model", "tiny:qwen2-vl", "--image", str(img), "--question", "How many?",
                             "--instruction", "none", "--max-new-tokens", "8", "-o", str(out)])
    assert json.loads(out.read_text())["question"] == "How many?", ok.output
    bad = runner.invoke(app, ["generate", "--model", "tiny:qwen2-vl", "--image", str(img), "--question", "How many?",
                              "--instruction", "terse", "-o", str(tmp_path / "x.json")])
    assert bad.exit_code != 0 and "unknown instruction mode 'terse'" in bad.output
