"""groundkit eval on a completions file: scores, summary groups, HTML report, resume, bad records."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

import pytest
from typer.testing import CliRunner

import groundkit as gk
from groundkit.cli import app
from groundkit.eval import EvalConfig, evaluate
from groundkit.scenes import generate_scenes
from groundkit.scenes.simulate import simulate_completions


@pytest.fixture(scope="module")
def scenes(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("eval-scenes")
    generate_scenes(root, 24, seed=11, size="tiny")
    return root


def completions(scenes: Path, path: Path, **oracle) -> Path:
    truths = gk.load_ground_truth(scenes / "scenes.jsonl").values()
    path.write_text("".join(json.dumps(r) + "\n" for r in simulate_completions(truths, **oracle)))
    return path


def test_a_perfect_oracle_scores_perfectly(scenes, tmp_path):
    comp = completions(scenes, tmp_path / "c.jsonl", wrong=0.0, invalid=0.0, jitter=0.0)
    run = evaluate(EvalConfig([f"scenes:{scenes}"], completions=str(comp)), tmp_path / "out")
    s = run.summary["overall"]
    assert s["n"] == 24 and s["correct"] == 24 and s["format"] == 1.0 and s["answer"] == 1.0
    assert s["point_in_mask"] == 1.0 and s["point_f1"] == 1.0 and s["box_iou_hungarian"] > 0.9
    assert set(run.summary["by_task"]) == {"counting", "spatial"}
    assert {"points", "boxes"} <= set(run.summary["by_grounding"])
    assert run.summary["by_grounding"]["boxes"]["point_f1"] is None  # point metrics only where points were used
    saved = json.loads((tmp_path / "out" / "results.json").read_text())
    assert saved["summary"]["overall"]["n"] == 24 and saved["records"] == 24


def test_mistakes_and_invalid_completions_are_classified(scenes, tmp_path):
    comp = completions(scenes, tmp_path / "c.jsonl", wrong=0.5, invalid=0.3, seed=4)
    run = evaluate(EvalConfig([f"scenes:{scenes}"], completions=str(comp)), tmp_path / "out")
    by_status = {st: [r for r in run.rows if r["status"] == st] for st in ("correct", "wrong", "invalid")}
    assert all(by_status.values()), {k: len(v) for k, v in by_status.items()}
    for r in by_status["invalid"]:
        assert r["parse_error"] and r["metrics"]["format"] == 0.0 and r["grounding"] == "invalid"
    for r in by_status["wrong"]:
        assert r["metrics"]["answer"] == 0.0 and r["predicted"] != r["truth"]
    s = run.summary["overall"]
    assert s["invalid"] == len(by_status["invalid"]) and abs(s["format"] - 1 + len(by_status["invalid"]) / 24) < 1e-9


class Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.images, self.tables, self.cards = [], 0, []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "img":
            self.images.append(a["src"])
        elif tag == "table":
            self.tables += 1
        elif tag == "div" and "card" in (a.get("class") or ""):
            self.cards.append(a["class"].split()[1])


def test_html_report_references_existing_pictures(scenes, tmp_path):
    comp = completions(scenes, tmp_path / "c.jsonl", wrong=0.4, invalid=0.2, seed=2)
    run = evaluate(EvalConfig([f"scenes:{scenes}"], completions=str(comp)), tmp_path / "out", gallery=3)
    parser = Links()
    parser.feed(run.report.read_text())
    assert parser.tables >= 5 and parser.images
    assert set(parser.cards) == {"correct", "wrong", "invalid"} and len(parser.cards) <= 9
    for src in parser.images:
        assert not src.startswith("/") and (run.out / src).is_file(), src
    from PIL import Image

    assert max(Image.open(run.out / parser.images[0]).size) <= 360


def test_resume_after_an_interrupted_run(scenes, tmp_path):
    comp = completions(scenes, tmp_path / "c.jsonl", seed=3)
    config = EvalConfig([f"scenes:{scenes}"], completions=str(comp), batch_size=5)

    def stop(done):
        if done >= 10:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        evaluate(config, tmp_path / "out", on_batch=stop)
    results = tmp_path / "out" / "results.jsonl"
    assert len(results.read_text().splitlines()) == 10
    with results.open("a") as f:
        f.write('{"bench": "scenes", "id": "torn')  # a write cut by the interruption
    run = evaluate(config, tmp_path / "out")
    assert (run.resumed, run.scored_now, len(run.rows)) == (10, 14, 24)
    assert len(results.read_text().splitlines()) == 24
    fresh = evaluate(config, tmp_path / "fresh")
    assert [r["metrics"] for r in run.rows] == [r["metrics"] for r in fresh.rows]
    again = evaluate(config, tmp_path / "out")
    assert again.scored_now == 0 and again.summary == run.summary
    with pytest.raises(gk.GroundkitError, match="--fresh"):
        evaluate(EvalConfig(config.benches, dialect="treevgr", completions=str(comp)), tmp_path / "out")


def test_bad_records_are_reported_by_id_and_the_run_goes_on(scenes, tmp_path):
    comp = completions(scenes, tmp_path / "c.jsonl")
    lines = comp.read_text().splitlines()
    missing = json.loads(lines[0])["id"]
    comp.write_text("\n".join(lines[1:] + ["{oops", json.dumps({"id": "x", "nothing": 1})]) + "\n")
    data = tmp_path / "gt.jsonl"
    data.write_text((scenes / "scenes.jsonl").read_text() + '{"id": "bad", "answer_type": "weird"}\n')
    run = evaluate(EvalConfig([f"scenes:{data}"], completions=str(comp)), tmp_path / "out")
    assert len(run.rows) == 23
    text = "\n".join(run.problems)
    assert f"record {missing}: no completion" in text and "record bad" in text and "line " in text and "record x" in text


def test_eval_cli_with_two_benchmarks_and_the_model_seam(scenes, tmp_path):
    import bench_published_fixtures as fx

    vsr = fx.vsr(tmp_path)
    first_two = [t.id for t in gk.load_benchmark("vsr", vsr) if isinstance(t, gk.GroundTruth)][:2]
    comp = completions(scenes, tmp_path / "c.jsonl", wrong=0.0, invalid=0.0)
    with comp.open("a") as f:
        for rid, answer in zip(first_two, ("no", "no")):
            f.write(json.dumps({"bench": "vsr", "id": rid, "completion": f"<think>The bed is there.</think><answer>{answer}</answer>"}) + "\n")
    runner = CliRunner()
    args = ["eval", "--bench", f"scenes:{scenes}", "--bench", f"vsr:{vsr}", "--completions", str(comp), "--out", str(tmp_path / "o"), "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])["summary"]
    assert summary["by_benchmark"]["vsr"]["n"] == 2 and summary["by_benchmark"]["vsr"]["correct"] == 1
    assert "vsr / spatial" in summary["by_benchmark_task"] and summary["by_benchmark"]["scenes"]["answer"] == 1.0
    assert "000000099999" in result.output  # the VSR row without a completion is named
    model = runner.invoke(app, ["eval", "--bench", f"scenes:{scenes}", "--model", "tiny:qwen2-vl", "--no-constrained",
                                "--limit", "2", "--max-new-tokens", "8", "--out", str(tmp_path / "m"), "--json"])
    assert model.exit_code == 0, model.output
    generated = json.loads(model.stdout.strip().splitlines()[-1])["summary"]
    assert generated["by_benchmark"]["scenes"]["n"] == 2  # a random tiny model: generated, scored (as invalid), not crashed
    both = runner.invoke(app, ["eval", "--bench", f"scenes:{scenes}", "--out", str(tmp_path / "m")])
    assert both.exit_code == 1 and "exactly one" in both.output
