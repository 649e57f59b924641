"""``groundkit score`` through typer's CliRunner."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from groundkit.cli import app

GT = [
    {"id": "s1", "answer": "2", "answer_type": "count",
     "objects": [{"label": "mug", "box": [0.1, 0.1, 0.3, 0.3]}, {"label": "mug", "box": [0.6, 0.6, 0.8, 0.8]}]},
    {"id": "s2", "answer": "B", "answer_type": "multiple_choice", "choices": ["red", "blue"],
     "objects": [{"label": "plate", "box": [0.3, 0.42, 0.52, 0.61]}]},
    {"id": "broken", "objects": [{"label": "x", "box": [0.5, 0.5, 0.1, 0.1]}]},
]
COMPLETIONS = [
    {"id": "c1", "sample_id": "s1", "completion": "<think><point>(200, 200)</point><point>(700, 700)</point></think><answer>2</answer>"},
    {"id": "c2", "sample_id": "s2", "completion": '<think><box label="plate">[300, 420, 520, 610]</box></think><answer>A</answer>'},
    {"id": "c3", "sample_id": "missing", "completion": "<think></think><answer>1</answer>"},
    {"id": "c4", "sample_id": "s1", "completion": "<think>unfinished"},
    {"id": "c5", "sample_id": "broken", "completion": "<think></think><answer>1</answer>"},
]


@pytest.fixture
def files(tmp_path):
    gt, comp = tmp_path / "gt.jsonl", tmp_path / "completions.jsonl"
    gt.write_text("".join(json.dumps(r) + "\n" for r in GT) + "{not json\n")
    comp.write_text("".join(json.dumps(r) + "\n" for r in COMPLETIONS))
    return gt, comp, tmp_path / "scores.jsonl"


def test_score_writes_per_record_json_and_reports_bad_records(files):
    gt, comp, out = files
    args = ["score", str(comp), "--data", str(gt), "--rewards", "format,answer:2,point_f1:0.5", "-o", str(out), "--json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["summary"]["answer"] == {"mean": pytest.approx(1 / 3), "none_share": 0.0, "count": 3.0}
    assert summary["summary"]["format"]["mean"] == pytest.approx(2 / 3) and summary["weights"]["answer"] == 2.0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in rows] == ["c1", "c2", "c4"]
    assert rows[0]["total"] == pytest.approx(3.5) and rows[1]["terms"]["point_f1"] == 0.0
    assert "parse_error" in rows[2] and rows[2]["total"] == 0.0
    for needle in ("record c3: no ground truth with id 'missing'", "record c5: no ground truth", "record broken:",
                   "record line 4: ground truth is not JSON"):
        assert needle in result.stderr, needle


def test_score_prints_a_table(files):
    gt, comp, out = files
    result = CliRunner().invoke(app, ["score", str(comp), "--data", str(gt), "-r", "format,point_f1", "-o", str(out)])
    assert result.exit_code == 0
    assert "point_f1" in result.stdout and "None share" in result.stdout and "wrote" in result.stdout


def test_score_fails_cleanly_on_unknown_terms_and_when_nothing_scores(files, tmp_path):
    gt, comp, out = files
    result = CliRunner().invoke(app, ["score", str(comp), "--data", str(gt), "-r", "format,nope"])
    assert result.exit_code == 1 and "unknown reward term 'nope'" in result.stderr
    only_bad = tmp_path / "bad.jsonl"
    only_bad.write_text(json.dumps(COMPLETIONS[2]) + "\n")
    result = CliRunner().invoke(app, ["score", str(only_bad), "--data", str(gt)])
    assert result.exit_code == 1 and "no completion could be scored" in result.stderr
