"""The embedded demo runs end to end and writes what it says it writes."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

from PIL import Image
from rich.console import Console

import groundkit as gk
from groundkit import demo


def test_demo_generates_scores_and_reports(tmp_path):
    out = io.StringIO()
    summary = demo.run(tmp_path, Console(file=out, width=200), n=12)
    overall = summary["summary"]["overall"]
    assert overall["n"] == 12 and overall["correct"] + overall["wrong"] + overall["invalid"] == 12
    assert set(summary["summary"]["by_task"]) <= {"counting", "spatial"} and not summary["problems"]
    report = Path(summary["report"])
    assert report.is_file() and (tmp_path / "scenes" / "scenes.jsonl").is_file()
    assert json.loads((tmp_path / "eval" / "results.json").read_text())["records"] == 12
    for src in re.findall(r'<img src="([^"]+)"', report.read_text()):
        assert Image.open(report.parent / src).size[0] <= 360
    printed = out.getvalue()
    assert str(report) in printed and "accuracy" in printed
    model = summary["model_summary"]["overall"]  # the tiny random model under constrained decoding
    assert model["n"] == 8 and model["invalid"] == 0, model
    assert Path(summary["model_report"]).is_file()


def test_example_groundings_land_on_their_scene_objects():
    """Each example's groundings hit the scene shape they name (the examples are honest)."""
    for rec in demo.example_records():
        trace = gk.get_parser(rec["dialect"], rec.get("frame")).parse(rec["completion"], gk.ImageSize(rec["width"], rec["height"]))
        scene = demo.draw_scene(rec["scene"], gk.ImageSize(rec["width"], rec["height"]))
        for g in trace.groundings:
            x1, y1, x2, y2 = gk.get_registry().grounding_type(g.type).bbox(g)
            cx, cy = (x1 + x2) / 2 * rec["width"], (y1 + y2) / 2 * rec["height"]
            assert scene.getpixel((int(cx), int(cy))) != (238, 232, 220), (rec["id"], g)
