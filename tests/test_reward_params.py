"""Reward-term parameters from spec strings (CLI, Python) and YAML training configs."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import groundkit as gk
from groundkit.cli import app
from groundkit.rewards.spec import RewardItem, format_reward_item, parse_reward_spec, split_reward_spec
from groundkit.training.config import ConfigError, load_config

TRUTH = {"id": "s1", "answer": "1", "answer_type": "count", "objects": [{"label": "cup", "box": [0.1, 0.1, 0.3, 0.3]}]}
NEAR = '<think><point label="cup">(400, 200)</point></think><answer>1</answer>'  # 0.1 right of the box
BASE = {"model": {"path": "tiny:gemma3"}, "data": {"train": "train.jsonl"}}


def point_f1(spec: str) -> float:
    result = gk.RewardSet.from_spec(spec)([NEAR], [gk.GroundTruth.from_dict(TRUTH)])
    return result.values["point_f1"][0]


# --- spec strings ---------------------------------------------------------------------------
def test_spec_parameters_reach_the_term_and_change_its_score():
    rs = gk.RewardSet.from_spec("format, point_f1(max_distance=0.2):0.5, answer:2")
    assert [(t.name, w) for t, w in rs.terms] == [("format", 1.0), ("point_f1", 0.5), ("answer", 2.0)]
    assert rs.terms[1][0].max_distance == 0.2
    assert point_f1("point_f1") == 0.0  # default max_distance 0.05: the point is too far
    assert point_f1("point_f1(max_distance=0.2)") == 1.0


def test_spec_reads_tuples_and_several_parameters_without_splitting_on_their_commas():
    rs = gk.RewardSet.from_spec("grounded_if_correct(grounding=('point_f1', 'mask_iou'), answer='answer'):0.5,format")
    term, weight = rs.terms[0]
    assert term.grounding == ("point_f1", "mask_iou") and weight == 0.5 and rs.names == ["grounded_if_correct", "format"]
    dup = gk.RewardSet.from_spec("duplicate_penalty(iou_threshold=0.8, point_distance=0.02, resolution=64)").terms[0][0]
    assert (dup.iou_threshold, dup.point_distance, dup.resolution) == (0.8, 0.02, 64)
    assert gk.RewardSet.from_spec(["format", "answer(rel_tol=1)"]).terms[1][0].rel_tol == 1.0  # int -> float


@pytest.mark.parametrize(("spec", "needles"), [
    ("point_f1(max_dist=0.1)", ["'point_f1'", "no parameter 'max_dist'", "known: max_distance"]),
    ("nope(a=1)", ["unknown reward term 'nope'"]),
    ("point_f1(max_distance=__import__('os'))", ["'max_distance'", "Python literal"]),
    ("point_f1(max_distance=1 +)", ["'point_f1'", "cannot read the parameters"]),
    ("point_f1(max_distance='far')", ["'max_distance'", "must be a number"]),
    ("duplicate_penalty(resolution=1.5)", ["'resolution'", "must be an integer"]),
    ("grounded_if_correct(grounding='point_f1')", ["'grounding'", "tuple"]),
    ("point_f1(0.1)", ["name=value"]),
    ("point_f1(max_distance=0.1):x", ["weight must be a number", "'x'"]),
    ("point_f1(max_distance=0.1):inf", ["finite"]),
    ("point_f1(max_distance=0.1)0.5", ["expected ':weight'"]),
    ("point_f1(max_distance=0.1", ["unclosed"]),
])
def test_bad_specs_raise_a_groundkit_error_naming_the_term_and_parameter(spec, needles):
    with pytest.raises(gk.GroundkitError) as info:
        gk.RewardSet.from_spec(spec)
    for needle in needles:
        assert needle in str(info.value), (needle, str(info.value))


def test_a_parameter_value_is_never_evaluated(tmp_path):
    marker = tmp_path / "ran"
    with pytest.raises(gk.GroundkitError):
        gk.RewardSet.from_spec(f"point_f1(max_distance=open({str(marker)!r}, 'w'))")
    assert not marker.exists()


names = st.sampled_from(["format", "point_f1", "answer", "my_term2"])
literals = st.one_of(st.integers(-10, 10), st.floats(-5, 5, allow_nan=False), st.text(max_size=6),
                     st.tuples(st.text(max_size=4), st.integers(0, 3)), st.booleans(), st.none())


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(names, st.dictionaries(st.sampled_from(["a", "b_c", "d"]), literals, max_size=3),
                          st.floats(-3, 3, allow_nan=False)), max_size=4))
def test_formatted_items_parse_back_to_the_same_items(entries):
    items = [RewardItem(n, p, w) for n, p, w in entries]
    spec = ",".join(format_reward_item(it) for it in items)
    assert parse_reward_spec(spec) == [RewardItem(it.name, it.params, float(f"{it.weight:g}")) for it in items]


def test_split_keeps_brackets_and_quotes_whole():
    assert split_reward_spec("a(x=(1, 2), y='p,q'):2, b ,c") == ["a(x=(1, 2), y='p,q'):2", "b", "c"]


# --- CLI ------------------------------------------------------------------------------------
def test_score_cli_takes_term_parameters(tmp_path):
    gt, comp = tmp_path / "gt.jsonl", tmp_path / "c.jsonl"
    gt.write_text(json.dumps(TRUTH) + "\n")
    comp.write_text(json.dumps({"id": "c1", "sample_id": "s1", "completion": NEAR}) + "\n")
    means = []
    for spec in ("format,point_f1", "format,point_f1(max_distance=0.2):0.5"):
        result = CliRunner().invoke(app, ["score", str(comp), "--data", str(gt), "-r", spec, "-o", str(tmp_path / "o.jsonl"), "--json"])
        assert result.exit_code == 0, result.output
        means.append(json.loads(result.stdout)["summary"]["point_f1"]["mean"])
    assert means == [0.0, 1.0]
    bad = CliRunner().invoke(app, ["score", str(comp), "--data", str(gt), "-r", "point_f1(radius=0.2)"])
    assert bad.exit_code == 1 and "no parameter 'radius'" in bad.stderr and "known: max_distance" in bad.stderr


# --- training configs -----------------------------------------------------------------------
def test_yaml_mapping_per_term_keeps_weight_and_parameters(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("model: {path: tiny:gemma3}\ndata: {train: d.jsonl}\n"
                    "rewards:\n  format: 1.0\n  point_f1: {weight: 0.5, max_distance: 0.2}\n"
                    "dual_stream:\n  textual_rewards: {answer: {weight: 2, rel_tol: 0.1}, format: 1}\n")
    cfg = load_config(path, "grpo")
    assert cfg.rewards == {"format": 1.0, "point_f1": {"weight": 0.5, "max_distance": 0.2}}
    assert cfg.dual_stream.textual_rewards == {"answer": {"weight": 2.0, "rel_tol": 0.1}, "format": 1.0}
    again = load_config(cfg.save(tmp_path / "saved.yaml"), "grpo")  # checkpoints carry the config: round trip
    assert again.rewards == cfg.rewards and again.dual_stream.textual_rewards == cfg.dual_stream.textual_rewards


def test_spec_string_and_list_forms_in_config_keep_parameters():
    cfg = load_config({**BASE, "rewards": "format,point_f1(max_distance=0.2):0.5,grounded_if_correct(grounding=('point_f1',))"})
    assert cfg.rewards == {"format": 1.0, "point_f1": {"weight": 0.5, "max_distance": 0.2},
                           "grounded_if_correct": {"weight": 1.0, "grounding": ["point_f1"]}}
    assert load_config({**BASE, "rewards": ["format", "point_f1(max_distance=0.2)"]}).rewards["point_f1"] == {
        "weight": 1.0, "max_distance": 0.2}
    assert load_config({**BASE, "rewards": {"format": 1, "answer": 2}}).rewards == {"format": 1.0, "answer": 2.0}


@pytest.mark.parametrize(("rewards", "key", "needle"), [
    ({"point_f1": {"weight": 0.5, "radius": 0.1}}, "rewards.point_f1", "no parameter 'radius'; known: max_distance"),
    ({"point_f1": {"weight": "heavy"}}, "rewards", "weight must be a finite number"),
    ({"point_f1": {"max_distance": "far"}}, "rewards.point_f1", "must be a number"),
    ({"nope": {"weight": 1}}, "rewards.nope", "unknown reward term"),
    ("format,point_f1(max_distance=)", "rewards", "cannot read the parameters"),
    ({"point_f1": True}, "rewards", "finite number"),
])
def test_bad_reward_config_raises_a_config_error_naming_the_key(rewards, key, needle):
    with pytest.raises(ConfigError) as info:
        load_config({**BASE, "rewards": rewards})
    assert info.value.key == key and needle in str(info.value)


def test_grpo_reward_functions_use_the_configured_parameters():
    from groundkit.training.grpo import reward_functions

    grammar = gk.get_grammar("groundkit", None, ["point"])
    scores = []
    for entry in (0.5, {"weight": 0.5, "max_distance": 0.2}):
        cfg = load_config({**BASE, "rewards": {"format": 1.0, "point_f1": entry}})
        funcs, weights = reward_functions(cfg, grammar)
        assert [f.__name__ for f in funcs] == ["format", "point_f1"] and weights == [1.0, 0.5]
        scores.append(funcs[1](prompts=["p"], completions=[NEAR], ground_truth=[json.dumps(TRUTH)])[0])
    assert scores == [0.0, 1.0]


def test_dual_stream_reward_functions_use_the_configured_parameters():
    pytest.importorskip("trl")
    from groundkit.training.dual_stream import dual_stream_rewards

    grammar = gk.get_grammar("groundkit", None, ["point"])
    cfg = load_config({**BASE, "rewards": {"point_f1": {"weight": 0.5, "max_distance": 0.2}},
                       "dual_stream": {"enabled": True, "textual_rewards": "answer(abs_tol=0.6):2,consistency"}})
    funcs, weights = dual_stream_rewards(cfg, grammar)
    assert [f.__name__ for f in funcs] == ["point_f1", "textual/answer", "textual/consistency"] and weights == [0.5, 2.0, 1.0]
    number = {**TRUTH, "answer_type": "number"}
    cols = {"ground_truth": [json.dumps(number)] * 2, "groundkit_stream": ["grounded", "textual"]}
    texts = [NEAR, "<think>one cup</think><answer>1.5</answer>"]
    assert funcs[0](completions=texts, **cols)[0] == 1.0
    assert funcs[1](completions=texts, **cols) == [None, 1.0]  # 1.5 within abs_tol 0.6 of 1
    with pytest.raises(ConfigError, match="textual_rewards.format"):
        dual_stream_rewards(load_config({**BASE, "dual_stream": {"textual_rewards": {"format": {"prefix_credit": 0.5}}}}), grammar)


# --- eval -----------------------------------------------------------------------------------
def test_eval_cli_metrics_take_parameters(tmp_path):
    from groundkit.eval.benchmarks import load_benchmark  # noqa: F401  (the scenes adapter is registered)
    from groundkit.scenes import generate_scenes
    from groundkit.scenes.simulate import simulate_completions

    scenes = tmp_path / "scenes"
    generate_scenes(scenes, 6, seed=3, size="tiny")
    comp = tmp_path / "c.jsonl"
    truths = gk.load_ground_truth(scenes / "scenes.jsonl").values()
    comp.write_text("".join(json.dumps(r) + "\n" for r in simulate_completions(truths, wrong=0.0, invalid=0.0, jitter=0.0)))
    means = {}
    for label, metrics in (("loose", "format,answer,point_f1(max_distance=0.5)"), ("tight", "format,answer,point_f1(max_distance=0.001)")):
        args = ["eval", "--bench", f"scenes:{scenes}", "--completions", str(comp), "--out", str(tmp_path / label),
                "--metrics", metrics, "--json"]
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
        summary = json.loads(result.stdout.strip().splitlines()[-1])["summary"]
        means[label] = summary["overall"]["point_f1"]
        run = json.loads((tmp_path / label / "results.json").read_text())
        assert run["config"]["metrics"] == metrics.split(",")  # a rerun with other parameters is a different run
    assert means["loose"] is not None and means["loose"] >= means["tight"]
