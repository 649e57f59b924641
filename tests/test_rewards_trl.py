"""The TRL adapter: signature, pickling, conversational completions, shared parses, bad ground truth."""

from __future__ import annotations

import inspect
import json
import logging
import pickle
import types

import pytest

import groundkit as gk
from groundkit.rewards.trl import GroundkitReward, GroundkitRewardSet, completion_text, trl_reward_funcs

TRUTH = {"id": "s1", "answer": "2", "answer_type": "count",
         "objects": [{"label": "mug", "box": [0.1, 0.1, 0.3, 0.3]}, {"label": "mug", "box": [0.6, 0.6, 0.8, 0.8]}]}
GOOD = '<think><point label="mug">(200, 200)</point><point label="mug">(700, 700)</point></think><answer>2</answer>'
TEXTUAL = "<think>two mugs</think><answer>2</answer>"
WRONG = '<think><point label="mug">(950, 50)</point></think><answer>1</answer>'
SPEC = "format,answer,point_f1:0.5,grounded_if_correct,consistency"


def conversational(text: str) -> list[dict]:
    return [{"role": "assistant", "content": text}]


def test_completion_text_handles_plain_and_conversational_completions():
    assert completion_text("abc") == "abc"
    assert completion_text(conversational("abc")) == "abc"
    parts = [{"role": "assistant", "content": [{"type": "text", "text": "a"}, {"type": "image"}, {"type": "text", "text": "b"}]}]
    assert completion_text(parts) == "ab"


def test_functions_have_trl_names_signature_and_pickle():
    from trl.trainer.utils import get_callable_name

    funcs, weights = trl_reward_funcs(SPEC)
    assert [get_callable_name(f) for f in funcs] == ["format", "answer", "point_f1", "grounded_if_correct", "consistency"]
    assert weights == [1.0, 1.0, 0.5, 1.0, 1.0]
    params = inspect.signature(funcs[0].__call__).parameters
    assert {"prompts", "completions", "completion_ids"} <= params.keys()
    assert any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    kwargs = {"prompts": ["p"] * 3, "completions": [GOOD, TEXTUAL, WRONG], "completion_ids": [[1]] * 3,
              "ground_truth": [json.dumps(TRUTH)] * 3}
    before = [f(**kwargs) for f in funcs]
    funcs[0](**kwargs)  # fill the shared cache: it must not travel in the pickle
    restored = pickle.loads(pickle.dumps(funcs))
    assert restored[0].cache is restored[1].cache and restored[0].cache._batch is None
    assert [f(**kwargs) for f in restored] == before
    assert before[0] == [1.0, 1.0, 1.0] and before[1] == [1.0, 1.0, 0.0] and before[4] == [None, 1.0, None]


def fake_trainer(funcs):
    from trl.trainer.utils import get_callable_name

    metrics, extras = {}, {}
    return types.SimpleNamespace(
        accelerator=types.SimpleNamespace(device="cpu", is_main_process=True),
        args=types.SimpleNamespace(report_to=[]),
        state=types.SimpleNamespace(global_step=3),
        reward_funcs=funcs,
        reward_processing_classes=[None] * len(funcs),
        reward_func_names=[get_callable_name(f) for f in funcs],
        _log_metric=lambda name, value: metrics.setdefault(name, []).append(value),
        _log_completion_extra=lambda column, values: extras.setdefault(column, []).extend(values),
        environments=None,
        metrics=metrics,
    )


def test_called_exactly_as_grpo_trainer_calls_reward_functions(monkeypatch):
    """Runs TRL's own ``GRPOTrainer._calculate_rewards`` (conversational prompts, dataset columns, None -> NaN)."""
    import torch
    from trl import GRPOTrainer

    calls = []
    original = gk.TraceParser.parse
    monkeypatch.setattr(gk.TraceParser, "parse", lambda self, text, size=None: calls.append(text) or original(self, text, size))
    funcs, _ = trl_reward_funcs(SPEC)
    trainer = fake_trainer(funcs)
    texts = [GOOD, TEXTUAL, WRONG, "<think>cut"]
    prompt = [{"role": "user", "content": "How many mugs?"}]
    inputs = [{"prompt": prompt, "ground_truth": TRUTH, "image": None} for _ in texts]
    completions = [conversational(t) for t in texts]
    rewards = GRPOTrainer._calculate_rewards(trainer, inputs, [prompt] * 4, completions, [[1, 2]] * 4)
    assert rewards.shape == (4, 5)
    expected = torch.tensor([
        [1.0, 1.0, 1.0, 1.0, float("nan")],
        [1.0, 1.0, 0.0, 0.0, 1.0],  # textual: consistent with GOOD (the best grounded completion of the group)
        [1.0, 0.0, 0.0, 0.0, float("nan")],
        [0.0, 0.0, 0.0, 0.0, float("nan")],
    ])
    assert torch.allclose(rewards, expected, equal_nan=True)
    assert sorted(calls) == sorted(texts)  # five reward functions, one parse per completion


def test_reward_set_function_returns_weighted_total_and_logs_each_term():
    f = GroundkitRewardSet("answer:2,point_f1")
    logged = {}
    total = f(prompts=["p", "p"], completions=[GOOD, WRONG], completion_ids=[[1], [1]], ground_truth=[TRUTH, TRUTH],
              log_metric=lambda k, v: logged.__setitem__(k, v), trainer_state=None, log_extra=None)
    assert total == [3.0, 0.0] and f.__name__ == "groundkit"
    assert logged["groundkit/answer"] == 0.5 and logged["groundkit/point_f1"] == 0.5 and logged["groundkit/total_none"] == 0.0
    assert pickle.loads(pickle.dumps(f))(prompts=["p"], completions=[GOOD], ground_truth=[TRUTH]) == [3.0]


def test_flat_columns_and_image_size_from_a_pil_column():
    from PIL import Image

    f = GroundkitReward("point_in_mask", frame="abs-original")
    objects = [{"label": "mug", "box": [0.0, 0.0, 0.5, 0.5]}]
    got = f(prompts=["p"], completions=["<think><point>(10, 10)</point></think><answer>1</answer>"],
            answer=["1"], objects=[objects], image=[Image.new("RGB", (40, 20))])
    assert got == [1.0]  # (10, 10) px of 40x20 is (0.25, 0.5): inside the box


def test_bad_ground_truth_gives_none_and_one_warning_not_a_crash(caplog):
    funcs, _ = trl_reward_funcs("format,answer,point_f1")
    bad = json.dumps({"id": "broken", "objects": [{"label": "x", "box": [0.5, 0.5, 0.1, 0.1]}]})
    with caplog.at_level(logging.WARNING, logger="groundkit.rewards.trl"):
        values = [f(prompts=["p"] * 3, completions=[GOOD] * 3, ground_truth=[bad, "{oops", 7]) for f in funcs]
    assert values == [[1.0, 1.0, 1.0], [None, None, None], [None, None, None]]
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 3 and "record broken: objects[0].box" in messages[0] and "record row 1" in messages[1]


def test_unknown_term_is_a_clear_error():
    with pytest.raises(gk.UnknownNameError, match="reward term 'nope'"):
        trl_reward_funcs("format,nope")
