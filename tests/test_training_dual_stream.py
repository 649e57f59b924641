"""iVGR dual-stream GRPO: stream-gated rewards, the cached best grounded completion, two steps on tiny Gemma3."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("trl")

from training_double import NAME, Plugin  # noqa: E402

from groundkit import build_registry, get_grammar, set_registry  # noqa: E402

TRUTH = json.dumps({"id": "s1", "answer": "2", "answer_type": "count", "width": 100, "height": 100,
                    "objects": [{"label": "cup", "box": [0.1, 0.1, 0.3, 0.3]}, {"label": "cup", "box": [0.6, 0.6, 0.8, 0.8]}]})
GOOD = '<think>cups <point label="cup">(200, 200)</point> <point label="cup">(700, 700)</point></think><answer>2</answer>'
WORSE = '<think>a cup <point label="cup">(200, 200)</point></think><answer>1</answer>'
TEXTUAL = "<think>I see two cups.</think><answer>2</answer>"


@pytest.fixture(scope="module", autouse=True)
def double_registry():
    set_registry(build_registry([("test-choices", Plugin())]))
    yield
    set_registry(None)


def cfg_dict(train, out, **extra):
    return {
        "model": {"path": "tiny:gemma3"}, "data": {"train": str(train)}, "format": {"types": ["point"]},
        "lora": {"r": 4, "alpha": 8}, "rewards": {"format": 1.0, "answer": 1.0, "point_f1": 0.5},
        "generation": {"backend": NAME, "max_new_tokens": 40, "num_generations": 2},
        "dual_stream": {"enabled": True},
        "trl": {"output_dir": str(out), "max_steps": 2, "per_device_train_batch_size": 2, "use_cpu": True,
                "logging_steps": 1, "save_strategy": "no", "beta": 0.0}, **extra,
    }


def test_rewards_are_gated_by_stream_and_consistency_uses_the_cached_best(tmp_path):
    from groundkit.training.config import load_config
    from groundkit.training.dual_stream import dual_stream_rewards

    cfg = load_config(cfg_dict(tmp_path / "x.jsonl", tmp_path), "grpo")
    funcs, weights = dual_stream_rewards(cfg, get_grammar("groundkit", None, ["point"]))
    names = [f.__name__ for f in funcs]
    assert names == ["format", "answer", "point_f1", "textual/format", "textual/answer", "textual/consistency"]
    assert weights == [1.0, 1.0, 0.5, 1.0, 1.0, 1.0]
    by_name = dict(zip(names, funcs))
    cols = {"ground_truth": [TRUTH] * 4, "sample_id": ["s1"] * 4,
            "groundkit_stream": ["grounded", "grounded", "textual", "textual"]}
    completions = [WORSE, GOOD, TEXTUAL, GOOD]
    assert by_name["format"](completions=completions, **cols)[2:] == [None, None]
    assert by_name["textual/format"](completions=completions, **cols) == [None, None, 1.0, 0.0]  # groundings in textual
    consistency = by_name["textual/consistency"](completions=completions, **cols)
    assert consistency[:2] == [None, None] and consistency[3] is None
    assert consistency[2] == pytest.approx(1.0)  # same answer, names the grounded object ("cups")
    best = by_name["textual/consistency"].best["s1"][1]
    assert best.answer == "2"
    # a later batch without any grounded completion still gets judged, against the cache
    later = by_name["textual/consistency"](completions=["<think>one cup</think><answer>1</answer>"],
                                            ground_truth=[TRUTH], sample_id=["s1"], groundkit_stream=["textual"])
    assert later[0] == pytest.approx(0.5)


def test_dual_stream_two_steps(tmp_path):
    from groundkit.scenes import generate_scenes
    from groundkit.training.launch import train_grpo

    generate_scenes(tmp_path / "scenes", 4, seed=5, size="tiny")
    run = train_grpo(cfg_dict(tmp_path / "scenes" / "scenes.jsonl", tmp_path / "run"))
    steps = [h for h in run.log_history if "loss" in h]
    assert len(steps) == 2
    for h in steps:
        for key in ("rewards/format/mean", "rewards/point_f1/mean", "rewards/textual/format/mean",
                    "rewards/textual/answer/mean", "rewards/textual/consistency/mean"):
            assert key in h, sorted(h)
        assert h["rewards/format/mean"] == 1.0
    prompts = [json.dumps(p, default=str) for p in run.trainer._logs["prompt"]]
    assert any("in words only" in p for p in prompts)  # TRL keeps the last rows: the textual group
