"""``groundkit experiment``: the counting pipeline end to end at toy size, resuming, and the hook."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("trl")

import groundkit as gk  # noqa: E402
from groundkit.cli import app  # noqa: E402


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    from typer.testing import CliRunner

    out = tmp_path_factory.mktemp("experiment") / "counting"
    result = CliRunner().invoke(app, ["experiment", "counting", "--out", str(out), "--scale", "smoke", "--seed", "1"])
    assert result.exit_code == 0, result.output
    return out, result.output


def test_counting_smoke_writes_results_for_every_arm(smoke_run):
    out, output = smoke_run
    results = json.loads((out / "results.json").read_text())
    assert results["experiment"] == "counting" and results["scale"] == "smoke" and results["minutes"] > 0
    assert set(results["arms"]) == {"direct", "grounded", "grounded+grpo"}
    assert 0.0 <= results["baselines"]["majority"] <= 1.0 and 0.0 <= results["baselines"]["chance"] <= 1.0
    for arm, m in results["arms"].items():
        assert m["records"] == 6, arm
        for key in ("accuracy", "accuracy_in_range", "accuracy_beyond_range", "format_valid", "point_f1"):
            assert key in m
        assert m["format_valid"] == 1.0  # constrained decoding: every completion parses
        lo, hi = m["accuracy_ci"]
        assert lo <= m["accuracy"] <= hi
        assert "groundkit/image_reliance" in m["curves"], arm
    assert "loss" in results["arms"]["direct"]["curves"]
    assert "reward" in results["arms"]["grounded+grpo"]["curves"]
    assert results["warmup"]["steps"] == 2 and "loss" in results["warmup"]["curves"]
    grpo = results["comparisons"]["grounded+grpo - grounded"]
    assert -1.0 <= grpo["point_f1_difference"] <= 1.0 and len(grpo["point_f1_ci"]) == 2
    assert "point_f1_difference" not in results["comparisons"]["grounded - direct"]  # the direct arm writes no points
    report = (out / "report.html").read_text()
    assert "grounded+grpo" in report and "sft_loss.png" in report and (out / "report" / "sft_loss.png").exists()
    assert "baselines: majority" in output


def test_counting_arms_differ_only_by_the_points(smoke_run):
    out, _ = smoke_run
    grounded = [json.loads(line) for line in (out / "traces" / "grounded.jsonl").read_text().splitlines()]
    direct = [json.loads(line) for line in (out / "traces" / "direct.jsonl").read_text().splitlines()]
    assert [r["id"] for r in grounded] == [r["id"] for r in direct]
    parser = gk.get_parser("groundkit")
    pointed = 0
    for g, d in zip(grounded, direct):
        tg, td = parser.parse(g["completion"]), parser.parse(d["completion"])
        assert not td.groundings
        pointed += len(tg.groundings) == int(g["answer"])
        assert " ".join(tg.thought.split()) == " ".join(td.thought.split())
    assert pointed == len(grounded)  # one point per counted object


def test_the_shared_warmup_names_colours_left_to_right_without_coordinates_or_counts(smoke_run):
    out, _ = smoke_run
    scenes = {json.loads(line)["id"]: json.loads(line) for line in (out / "scenes" / "train" / "scenes.jsonl").read_text().splitlines()}
    rows = [json.loads(line) for line in (out / "traces" / "warmup.jsonl").read_text().splitlines()]
    assert len(rows) == len(scenes)
    parser = gk.get_parser("groundkit")
    for row in rows:
        shapes = sorted(scenes[row["id"]]["scene"], key=lambda o: o["box"][0] + o["box"][2])
        assert row["answer"] == ", ".join(o["label"].split()[0] for o in shapes)
        trace = parser.parse(row["completion"])
        assert not trace.groundings and not any(ch.isdigit() for ch in row["completion"])
        assert (out / "traces" / "synth" / row["image"]).resolve().exists()
    # both SFT arms start from the warm-up's checkpoint
    for arm in ("direct", "grounded"):
        stage = json.loads((out / "stages" / f"sft-{arm}.json").read_text())
        assert stage["settings"]["start"] == str((out / "arms" / "warmup").resolve()), stage["settings"]


def test_counting_rerun_resumes_every_stage(smoke_run):
    from typer.testing import CliRunner

    out, _ = smoke_run
    before = (out / "results.json").read_text()
    result = CliRunner().invoke(app, ["experiment", "counting", "--out", str(out), "--scale", "smoke", "--seed", "1"])
    assert result.exit_code == 0, result.output
    assert result.output.count("resumed") >= 9 and "..." not in result.output
    assert json.loads((out / "results.json").read_text())["arms"] == json.loads(before)["arms"]


def test_a_changed_stage_redoes_the_stages_downstream_of_it(smoke_run, monkeypatch, tmp_path):
    """Changing GRPO's settings reruns GRPO and the evaluation of its checkpoint (which lives in the
    same folder, so the path alone would not tell), and nothing upstream of it."""
    import shutil
    from dataclasses import replace

    from groundkit.experiments.plans import PLANS

    out = tmp_path / "counting"
    shutil.copytree(smoke_run[0], out)
    done: list[str] = []
    monkeypatch.setitem(PLANS, "smoke", replace(PLANS["smoke"], grpo_lr=PLANS["smoke"].grpo_lr / 2))
    gk.run_experiment("counting", out, gk.ExperimentOptions(scale="smoke", seed=1),
                      progress=lambda name, finished, total: done.append(name) if finished == 0 else None)
    assert done == ["grpo", "eval-grounded+grpo"]


def test_grpo_through_a_lora_adapter_on_a_fully_trained_arm(smoke_run, monkeypatch, tmp_path):
    """``grpo_lora_rank``: only GRPO trains an adapter (the SFT arms stay full fine-tunes); it is merged
    into a checkpoint that loads like any other, and only GRPO and its evaluation rerun."""
    import shutil
    from dataclasses import replace

    from groundkit.experiments.plans import PLANS

    out = tmp_path / "counting"
    shutil.copytree(smoke_run[0], out)
    done: list[str] = []
    monkeypatch.setitem(PLANS, "smoke", replace(PLANS["smoke"], grpo_lora_rank=2))
    results = gk.run_experiment("counting", out, gk.ExperimentOptions(scale="smoke", seed=1),
                                progress=lambda name, finished, total: done.append(name) if finished == 0 else None)
    assert done == ["grpo", "eval-grounded+grpo"]
    assert results["plan"]["lora"] is False and results["plan"]["grpo_lora_rank"] == 2
    merged = out / "arms" / "grounded+grpo" / "merged"
    loaded = gk.load_model(str(merged))
    assert not any("lora_" in n for n, _ in loaded.model.named_parameters())
    adapter = json.loads((out / "arms" / "grounded+grpo" / "adapter_config.json").read_text())
    assert adapter["r"] == 2 and adapter["lora_alpha"] == 4
    assert results["arms"]["grounded+grpo"]["records"] == results["arms"]["grounded"]["records"]
    assert results["arms"]["grounded+grpo"]["format_valid"] == 1.0


def test_unknown_scale_or_experiment_is_one_clear_error(tmp_path):
    from typer.testing import CliRunner

    bad = CliRunner().invoke(app, ["experiment", "counting", "--out", str(tmp_path), "--scale", "huge"])
    assert bad.exit_code == 1 and "no scale 'huge'" in bad.output
    missing = CliRunner().invoke(app, ["experiment", "nope", "--out", str(tmp_path)])
    assert missing.exit_code == 1 and "unknown experiment 'nope'" in missing.output
    gpu = CliRunner().invoke(app, ["experiment", "counting", "--out", str(tmp_path), "--scale", "gpu"])
    assert gpu.exit_code == 1 and "needs --model" in gpu.output


def test_hook_register_experiments(fresh_registry, tmp_path):
    class Echo(gk.Experiment):
        name = "echo"
        scales = ("cpu",)

        def run(self, out, options, progress=None):
            progress("only", 1, 1)
            return {"experiment": "echo", "seed": options.seed, "out": str(out)}

    def register_experiments(register):
        register(Echo())

    import types

    reg = fresh_registry(("echo-plugin", types.SimpleNamespace(register_experiments=gk.hookimpl(register_experiments))))
    assert reg.plugins["echo-plugin"].registered == [("experiment", "echo")]
    seen = []
    results = gk.run_experiment("echo", tmp_path, gk.ExperimentOptions(scale="cpu", seed=4), lambda *a: seen.append(a))
    assert results["seed"] == 4 and seen == [("only", 1, 1)]
    with pytest.raises(gk.GroundkitError, match="no scale 'gpu'"):
        gk.run_experiment("echo", tmp_path, gk.ExperimentOptions(scale="gpu"))
    with pytest.raises(gk.GroundkitError, match="seed"):
        gk.ExperimentOptions(seed=-1)


def test_counting_lora_path_merges_checkpoints(tmp_path):
    """The GPU scale's path (LoRA adapters merged into loadable checkpoints) at toy size."""
    results = gk.run_experiment("counting", tmp_path / "lora", gk.ExperimentOptions(scale="smoke-lora", seed=2))
    assert results["plan"]["lora"] is True
    for arm in ("direct", "grounded", "grounded+grpo"):
        folder = tmp_path / "lora" / "arms" / arm / "merged"
        assert (folder / "config.json").exists(), arm
        assert results["arms"][arm]["format_valid"] == 1.0
    loaded = gk.load_model(str(tmp_path / "lora" / "arms" / "grounded+grpo" / "merged"))
    assert not any("lora_" in n for n, _ in loaded.model.named_parameters())
