"""GRPO on tiny backbones (CPU): constrained rollouts on synthetic scenes, per-term reward logs,
mask-consistent log-probs, checkpoint + resume.

Constrained rollouts use the decoding backend ``test-choices`` (a TEST DOUBLE of the lead's
engine, see ``training_double.py``) through the real code path; the ``real_engine`` variants
run the same checks against the backend ``groundkit`` once ``groundkit.decoding`` has
``replay_mask`` (skipped until then).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("trl")
pytest.importorskip("peft")

import torch  # noqa: E402
from training_double import NAME, Plugin, real_engine_available  # noqa: E402

import groundkit as gk  # noqa: E402
from groundkit import build_registry, get_parser, set_registry  # noqa: E402

BACKENDS = [
    pytest.param(NAME, id="double"),
    pytest.param("groundkit", id="real_engine", marks=pytest.mark.skipif(
        not real_engine_available(), reason="groundkit.decoding has no replay_mask / 'groundkit' backend yet (lead's engine)")),
]


@pytest.fixture(scope="module", autouse=True)
def double_registry():
    set_registry(build_registry([("test-choices", Plugin())]))
    yield
    set_registry(None)


@pytest.fixture(scope="module")
def scenes(tmp_path_factory) -> Path:
    from groundkit.scenes import generate_scenes

    out = tmp_path_factory.mktemp("scenes")
    generate_scenes(out, 4, seed=3, size="tiny")
    return out / "scenes.jsonl"


def config(scenes: Path, out: Path, backend: str = NAME, model: str = "tiny:gemma3", **sections) -> dict:
    cfg = {
        "model": {"path": model},
        "data": {"train": str(scenes)},
        "format": {"types": ["point"]},
        "lora": {"r": 4, "alpha": 8},
        "rewards": {"format": 1.0, "answer": 1.0, "point_f1": 0.5},
        "generation": {"constrained": True, "backend": backend, "max_new_tokens": 40, "num_generations": 2, "temperature": 0.7},
        "trl": {"output_dir": str(out), "max_steps": 2, "per_device_train_batch_size": 2, "use_cpu": True,
                "logging_steps": 1, "save_steps": 2, "beta": 0.0, "learning_rate": 1e-3, "seed": 0},
    }
    for key, value in sections.items():
        cfg[key] = {**cfg.get(key, {}), **value}
    return cfg


@pytest.mark.parametrize("backend", BACKENDS)
def test_grpo_constrained_two_steps_logs_terms_saves_and_resumes(scenes, tmp_path, backend):
    from groundkit.training.launch import train_grpo

    run = train_grpo(config(scenes, tmp_path / "run", backend))
    steps = [h for h in run.log_history if "loss" in h]
    assert len(steps) == 2
    for h in steps:
        for term in ("format", "answer", "point_f1"):
            assert f"rewards/{term}/mean" in h, h.keys()
        assert h["rewards/format/mean"] == 1.0  # every rollout parses
    parser = get_parser(run.grammar.dialect.name, run.grammar.frame.name, ["point"])
    completions = list(run.trainer._logs["completion"])
    assert completions
    for c in completions:
        text = c if isinstance(c, str) else c[0]["content"]
        parser.parse(text)
    ckpt = tmp_path / "run" / "checkpoint-2"
    assert (ckpt / "adapter_model.safetensors").exists()
    assert "format" in (ckpt / "groundkit_config.yaml").read_text()
    state = json.loads((ckpt / "trainer_state.json").read_text())
    assert state["global_step"] == 2

    resumed = train_grpo(config(scenes, tmp_path / "run", backend, trl={"max_steps": 3}), resume_from_checkpoint=str(ckpt))
    assert resumed.trainer.state.global_step == 3
    # the history of steps 1-2 comes from the checkpoint; only step 3 was trained again
    assert [h["step"] for h in resumed.log_history if "loss" in h] == [1, 2, 3]
    assert resumed.log_history[-1]["train_runtime"] < run.log_history[-1]["train_runtime"] * 5


def record_generation_scores(trainer, monkeypatch) -> list:
    """The scores the grammar processor hands on at each generation step (rollouts only, not replays)."""
    recorded: list = []
    generating = [False]
    make, generate_turn = trainer.gk_processor, trainer._generate_single_turn

    def recording_processor(sizes):
        processor = make(sizes)
        call = type(processor).__call__
        if not getattr(call, "gk_recording", False):
            def record(self, input_ids, scores):
                out = call(self, input_ids, scores)
                if generating[0]:
                    recorded.append(out.detach().clone())
                return out

            record.gk_recording = True
            monkeypatch.setattr(type(processor), "__call__", record)
        return processor

    def generating_turn(*args, **kwargs):
        generating[0] = True
        try:
            return generate_turn(*args, **kwargs)
        finally:
            generating[0] = False

    monkeypatch.setattr(trainer, "gk_processor", recording_processor)
    monkeypatch.setattr(trainer, "_generate_single_turn", generating_turn)
    return recorded


@pytest.mark.parametrize("backend", BACKENDS)
def test_loss_logps_equal_masked_generation_distribution(scenes, tmp_path, backend, monkeypatch):
    from groundkit.training.config import load_config
    from groundkit.training.grpo import build_grpo

    temperature = 0.7
    # prompts of one length: no left padding, so generate() and the training forward see the same
    # positions and differ only by float rounding (padded rows differ by ~5e-3 in TRL, masked or not)
    records = [json.loads(line) for line in scenes.read_text().splitlines()[:2]]
    same = tmp_path / "same.jsonl"
    same.write_text("".join(json.dumps({**r, "question": "How many cups are there?", "image": str(scenes.parent / r["image"])}) + "\n"
                            for r in records))
    cfg = load_config(config(same, tmp_path / "mc", backend,
                             trl={"max_steps": 1, "steps_per_generation": 2, "gradient_accumulation_steps": 1,
                                  "save_strategy": "no"}), "grpo")
    trainer = build_grpo(cfg).trainer
    outputs, loss_calls, old_calls = [], [], []
    generate_and_score = trainer._generate_and_score_completions
    logps_fn = trainer._get_per_token_logps_and_entropies

    def capture_outputs(inputs):
        out = generate_and_score(inputs)
        outputs.append(out)
        return out

    def capture_logps(model, input_ids, attention_mask, logits_to_keep, *args, **kwargs):
        result = logps_fn(model, input_ids, attention_mask, logits_to_keep, *args, **kwargs)
        if kwargs.get("compute_entropy"):
            loss_calls.append((input_ids.clone(), result[0].detach().clone()))
        else:  # old log-probs, computed at generation time; also compute them with the switch off
            trainer.gk_mask_consistent = False
            plain = logps_fn(model, input_ids, attention_mask, logits_to_keep, *args, **kwargs)[0]
            trainer.gk_mask_consistent = True
            old_calls.append((result[0].clone(), plain.clone()))
        return result

    trainer._generate_and_score_completions = capture_outputs
    trainer._get_per_token_logps_and_entropies = capture_logps
    recorded = record_generation_scores(trainer, monkeypatch)
    trainer.train()

    out = outputs[0]
    ids, mask = out["completion_ids"], out["completion_mask"].bool()
    old, plain = old_calls[0]
    assert torch.isfinite(old[mask]).all()
    # the sampling distribution: the grammar processor's scores at each step, then the temperature
    # (transformers applies custom processors before its warpers)
    steps = torch.stack(recorded, dim=1)  # (B, steps, V)
    n = min(steps.size(1), ids.size(1))
    at_generation = torch.log_softmax(steps[:, :n].float() / temperature, -1).gather(-1, ids[:, :n, None]).squeeze(-1)
    m = mask[:, :n]
    gap = (old[:, :n][m] - at_generation[m]).abs()
    # the double's masks are dense; the real engine's sparse log-normaliser sums float32 probabilities
    # over the whole vocabulary (262k for Gemma3): ~1e-3 of rounding of either sign (a 400-token vocabulary: 1e-5);
    # a temperature applied twice or a mask out of step would be off by 0.1 or more
    assert gap.max() < (2e-4 if backend == NAME else 1e-2) and gap.mean() < (1e-4 if backend == NAME else 2e-3), gap
    # forced tokens (one allowed) have log-prob 0 under the mask, but not without it
    assert (plain[mask] < old[mask] - 1e-3).any()
    # the loss of the first step (same weights) uses the same masked log-probs, row for row
    prompt_completion = torch.cat([out["prompt_ids"], out["completion_ids"]], dim=1)
    input_ids, loss_logps = loss_calls[0]
    for row in range(input_ids.size(0)):
        match = (prompt_completion == input_ids[row]).all(dim=1).nonzero()[0, 0]
        keep = mask[match]
        torch.testing.assert_close(loss_logps[row][keep], old[match][keep], atol=2e-4, rtol=1e-4)


def test_grpo_unconstrained_qwen25_vl_two_steps(scenes, tmp_path):
    from groundkit.training.launch import train_grpo

    run = train_grpo(config(scenes, tmp_path / "q", model="tiny:qwen2.5-vl", generation={"constrained": False, "max_new_tokens": 8},
                            trl={"save_strategy": "no"}))
    steps = [h for h in run.log_history if "loss" in h]
    assert len(steps) == 2 and all("rewards/answer/mean" in h for h in steps)
    assert run.grammar.frame.name.startswith("abs-resized")


def test_vllm_path_gets_the_bounded_export_regex():
    import regex

    from groundkit.training.grpo import structured_outputs_regex

    pattern = regex.compile(structured_outputs_regex(gk.get_grammar("groundkit", "rel-1000")), regex.DOTALL)
    assert pattern.fullmatch("<think>a <point>(10,1000)</point></think><answer>1</answer>")
    assert not pattern.fullmatch("<think>a <point>(10,1001)</point></think><answer>1</answer>")
    with pytest.raises(gk.PerImageBoundError):
        structured_outputs_regex(gk.get_grammar("groundkit", "abs-original"))
