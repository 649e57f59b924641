"""The synthesis teacher decodes under the grammar by default; the README's synth example keeps records."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import groundkit as gk
from groundkit.errors import ConfigError
from groundkit.scenes import generate_scenes
from groundkit.synth import config_from_dict
from groundkit.synth.distil import Source
from groundkit.synth.pipeline import make_teacher

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    root = tmp_path_factory.mktemp("scenes")
    generate_scenes(root, 6, seed=5, size="tiny")
    return root / "scenes.jsonl"


def teacher_config(scenes, out, **teacher):
    return config_from_dict({"input": str(scenes), "out": str(out), "teacher": teacher, "grounder": "oracle"})


def test_teacher_constrained_defaults_to_true_and_accepts_false(scenes, tmp_path):
    assert teacher_config(scenes, tmp_path, model="tiny:qwen2.5-vl").teacher.constrained is True
    cfg = teacher_config(scenes, tmp_path, model="tiny:qwen2.5-vl", constrained=False)
    assert cfg.teacher.constrained is False and make_teacher(cfg).constrained is False
    assert make_teacher(teacher_config(scenes, tmp_path, model="tiny:qwen2.5-vl")).describe()["constrained"] is True


def test_teacher_constrained_must_be_a_boolean(scenes, tmp_path):
    with pytest.raises(ConfigError, match="teacher.constrained.*true or false"):
        teacher_config(scenes, tmp_path, model="tiny:qwen2.5-vl", constrained="yes")


def test_constrained_model_teacher_writes_traces_that_parse(scenes):
    truths = [gk.GroundTruth.from_dict(json.loads(line)) for line in scenes.read_text().splitlines()[:3]]
    sources = [Source(t, scenes.parent / t.image) for t in truths]
    teacher = make_teacher(teacher_config(scenes, scenes.parent / "out", model="tiny:qwen2.5-vl", max_new_tokens=24))
    outputs = teacher.complete(sources)
    assert len(outputs) == 3
    for out in outputs:
        assert out.error is None and out.text
        gk.parse(out.text, "groundkit")  # raises ParseError when the text does not follow the dialect


def test_synth_with_a_tiny_model_teacher_drops_nothing_as_unparseable(scenes, tmp_path):
    cfg = teacher_config(scenes, tmp_path, model="tiny:qwen2.5-vl", max_new_tokens=24)
    summary = gk.run_synth(cfg)
    assert summary.total == 6
    assert "unparseable" not in summary.dropped  # a random model answers wrongly, but in the format


def readme_synth_config() -> str:
    section = README.read_text(encoding="utf-8").split("## Synthesising SFT data", 1)[1]
    match = re.search(r"```yaml\n(.*?)```", section, re.DOTALL)
    assert match, "README's synth section has no yaml example"
    return match.group(1)


def test_the_readme_synth_example_keeps_records(tmp_path):
    generate_scenes(tmp_path / "scenes", 8, seed=0, size="tiny")
    (tmp_path / "synth.yaml").write_text(readme_synth_config(), encoding="utf-8")
    summary = gk.run_synth(gk.load_synth_config(tmp_path / "synth.yaml"))
    assert summary.total == 8 and summary.kept >= 4
    assert "unparseable" not in summary.dropped


def test_constrained_changes_a_model_teachers_fingerprint_only(scenes, tmp_path):
    model = [teacher_config(scenes, tmp_path, model="tiny:qwen2.5-vl", constrained=c).fingerprint() for c in (True, False)]
    assert model[0] != model[1]
    simulated = teacher_config(scenes, tmp_path, simulate={"wrong": 0.2})
    before = simulated.fingerprint()
    simulated.teacher.constrained = False
    assert simulated.fingerprint() == before
