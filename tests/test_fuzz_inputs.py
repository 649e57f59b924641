"""Fuzzing every input path (issue 13): random and mutated traces per dialect, 100 KB inputs and
bad ground truth go through parse (strict and lenient), validate, every reward term through a
RewardSet, the TRL adapter and ``groundkit score`` on files. Any exception that is not a
:class:`groundkit.GroundkitError` fails the test. Examples are bounded to keep it to seconds."""

from __future__ import annotations

import copy
import inspect
import json
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import trace as trace_strategy
from typer.testing import CliRunner

import groundkit as gk
from groundkit.cli import app
from groundkit.geometry import rle_encode
from groundkit.rewards.trl import GroundkitRewardSet, trl_reward_funcs

DIALECTS = ("groundkit", "treevgr", "qwen2vl", "qwen-json", "molmo")
SIZE = gk.ImageSize(640, 480)
ALL_TERMS = ("format,answer,point_in_mask,point_f1,box_iou_greedy,box_iou_hungarian,mask_iou,count_consistency,"
             "duplicate_penalty,grounded_if_correct,consistency")
PIECES = (
    "<think>", "</think>", "<answer>", "</answer>", '<point label="mug">', "</point>", "<box>", "</box>", "<mask>", "</mask>",
    "(", ")", "[", "]", ",", " ", '"', "{", "}", '"bbox_2d": ', '"point_2d": ', '"label": ', "```json\n", "```",
    "<|object_ref_start|>", "<|object_ref_end|>", "<|box_start|>", "<|box_end|>", '<point x="', '" y="', '" alt="',
    "9" * 400, "1000", "1001", "0", "-5", "3.14159", "1e9", "NaN", "\n", "\\u00e9", "é", "\x00", "\ud800", "<" * 50,
)
LENIENT = "lenient" in inspect.signature(gk.parse).parameters
MASK = rle_encode(__import__("numpy").pad(__import__("numpy").ones((4, 4), bool), 2))
VALID_TRUTH = {
    "id": "s", "answer": "2", "answer_type": "count", "width": 640, "height": 480, "question": "How many mugs?",
    "objects": [
        {"label": "mug", "box": [0.1, 0.2, 0.3, 0.4], "points": [[0.2, 0.3]], "synonyms": ["cup"]},
        {"label": "mug", "mask": MASK},
        {"label": "plate", "mask": [[0.5, 0.5, 0.9, 0.5, 0.7, 0.9]]},
    ],
}
NASTY = (None, True, False, "x", "640", "", float("nan"), float("inf"), -float("inf"), -1, 0, 10**400, 1.5, 1e308,
         [], {}, [[[]]], [1, 2], {"size": [0, 0], "counts": ""}, {"size": [2, 2], "counts": [-1, 5]}, "\ud800", [None] * 4)


def ours_only(fn, *args, **kw):
    """Run ``fn``; a groundkit error is an acceptable answer to bad input, anything else fails the test."""
    try:
        return fn(*args, **kw)
    except gk.GroundkitError:
        return None


def mutate(text: str, rng: random.Random, edits: int) -> str:
    for _ in range(edits):
        op = rng.randrange(4)
        i = rng.randrange(len(text) + 1)
        j = min(len(text), i + rng.randrange(1, 12))
        if op == 0:
            text = text[:i] + text[j:]
        elif op == 1:
            text = text[:i] + rng.choice(PIECES) + text[i:]
        elif op == 2:
            text = text[:i] + text[i:j] * rng.randrange(2, 5) + text[j:]
        else:
            text = text[:i] + "".join(rng.choice("0123456789<>[](),.\"' ") for _ in range(j - i)) + text[j:]
    return text


def read_everything(texts: list[str], dialect: str, truths: list[gk.GroundTruth | None], frame: str | None = None) -> None:
    """Parse (strict, lenient), then every reward term, then the TRL adapter: only groundkit errors allowed."""
    for text in texts:
        ours_only(gk.parse, text, dialect, frame, image_size=SIZE)
        if LENIENT:
            gk.parse(text, dialect, frame, image_size=SIZE, lenient=True)  # lenient never raises for content
    rs = gk.RewardSet.from_spec(ALL_TERMS)
    result = rs(texts, truths, dialect=dialect, frame=frame)
    assert len(result.total) == len(texts)
    columns = [t.to_dict() if t is not None else None for t in truths]
    for f in trl_reward_funcs(ALL_TERMS, dialect=dialect, frame=frame)[0]:
        assert len(f(prompts=["p"] * len(texts), completions=texts, ground_truth=columns)) == len(texts)


@pytest.mark.parametrize(("dialect", "frame"), [(d, None) for d in DIALECTS] + [
    ("qwen-json", "abs-resized"), ("qwen2vl", "abs-original"), ("groundkit", "unit"), ("treevgr", "percent-100")])
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), seed=st.integers(0, 2**32 - 1), edits=st.integers(0, 6))
def test_mutated_traces_raise_only_groundkit_errors(dialect, frame, data, seed, edits):
    trace = data.draw(trace_strategy(dialect, frame, SIZE))
    text = gk.format_trace(trace, dialect, frame, image_size=SIZE)
    rng = random.Random(seed)
    texts = [text, mutate(text, rng, edits), mutate(text, rng, edits + 3)]
    truth = gk.GroundTruth.from_dict(VALID_TRUTH)
    read_everything(texts, dialect, [truth, truth, None], frame)


@pytest.mark.parametrize("dialect", DIALECTS)
def test_100_kb_inputs_of_every_family_raise_only_groundkit_errors(dialect):
    rng = random.Random(13)
    trace = gk.Trace((gk.Text("I see "), gk.Grounding("point", (0.25, 0.5), "mug"), gk.Text(" there.")), "2")
    valid = gk.format_trace(trace, dialect, image_size=SIZE, lossy=True)
    head, _, _ = valid.partition(" there.")
    n = 100_000
    families = {
        "truncated": head + ("the mug is near the plate " * (n // 26)),
        "valid": valid.replace(" there.", " there." + "x" * n),
        "error at the end": valid.replace(" there.", " there." + "y" * n) + "<<",
        "runs of <": "<" * n, "runs of [": head + "[" * n, "digits": head + "9" * n,
        "mutated": mutate(valid * (n // len(valid)), rng, 200),
    }
    truth = gk.GroundTruth.from_dict(VALID_TRUTH)
    read_everything(list(families.values()), dialect, [truth] * len(families))


def nasty_truth(rng: random.Random) -> dict:
    """The valid record with one to three values (anywhere in it) replaced by a nasty value."""
    d = copy.deepcopy(VALID_TRUTH)
    for _ in range(rng.randrange(1, 4)):
        node = d
        while True:
            key = rng.choice(list(node) if isinstance(node, dict) else range(len(node)))
            child = node[key]
            if isinstance(child, (dict, list)) and child and rng.random() < 0.6:
                node = child
                continue
            node[key] = copy.deepcopy(rng.choice(NASTY))
            break
    return d


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_bad_ground_truth_raises_only_groundkit_errors(seed):
    rng = random.Random(seed)
    record = nasty_truth(rng)
    built = ours_only(gk.GroundTruth.from_dict, record)
    text = '<think><point label="mug">(200, 300)</point> <box label="cup">[100, 200, 300, 400]</box></think><answer>2</answer>'
    read_everything([text, "<think>two</think><answer>2</answer>"], "groundkit", [built, built])
    reward = GroundkitRewardSet(ALL_TERMS)  # the raw record as a TRL column: a bad one is None, logged
    try:
        as_json = json.dumps(record)
    except ValueError:  # a lone surrogate or an integer too long for text: not a record anyone can store
        as_json = None
    columns = [record] + ([as_json] if as_json is not None else [])
    total = reward(prompts=["p"] * len(columns), completions=[text] * len(columns), ground_truth=columns)
    assert len(total) == len(columns)


def test_score_and_validate_on_corrupted_files_write_the_good_records(tmp_path):
    rng = random.Random(7)
    truths, completions = [], []
    for k in range(30):
        record = dict(copy.deepcopy(VALID_TRUTH), id=f"s{k}") if k % 3 else dict(nasty_truth(rng), id=f"s{k}")
        truths.append(json.dumps(record, ensure_ascii=False).encode("utf-8", "surrogatepass"))
        text = mutate('<think><point label="mug">(200, 300)</point></think><answer>2</answer>', rng, k % 5)
        line = json.dumps({"id": f"c{k}", "sample_id": f"s{k}", "completion": text}, ensure_ascii=False)
        completions.append(line.encode("utf-8", "surrogatepass"))
    for lines in (truths, completions):  # a few bytes flipped anywhere
        for _ in range(4):
            k = rng.randrange(len(lines))
            b = bytearray(lines[k])
            b[rng.randrange(len(b))] = rng.randrange(256)
            lines[k] = bytes(b)
    gt, comp, out = tmp_path / "gt.jsonl", tmp_path / "c.jsonl", tmp_path / "out.jsonl"
    gt.write_bytes(b"\n".join(truths) + b"\n")
    comp.write_bytes(b"\n".join(completions) + b"\n")
    result = CliRunner().invoke(app, ["score", str(comp), "--data", str(gt), "-r", ALL_TERMS, "-o", str(out), "--json"])
    assert result.exit_code == 0 and result.exception is None, result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) >= 10 and all(r["id"].startswith("c") for r in rows)
    for args in (["validate", str(comp)], ["parse", str(comp)]):
        result = CliRunner().invoke(app, args)
        assert result.exit_code in (0, 1) and (result.exception is None or isinstance(result.exception, SystemExit)), result.output
