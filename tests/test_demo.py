"""The embedded demo runs end to end and writes what it says it writes."""

from __future__ import annotations

import io
import json

from PIL import Image
from rich.console import Console

import groundkit as gk
from groundkit import demo


def test_demo_writes_pictures_and_traces(tmp_path):
    out = io.StringIO()
    summary = demo.run(tmp_path, Console(file=out, width=200))
    records = demo.example_records()
    assert {r["dialect"] for r in records} == set(gk.get_registry().dialects.names())
    for rec in summary["records"]:
        img = Image.open(rec["picture"])
        assert img.size == (640, 480)
    assert summary["truncated_error"]["truncated"] is True
    assert gk.parse(summary["converted"]["treevgr->groundkit"]).groundings
    assert len(gk.parse(summary["converted"]["groundkit->molmo"], "molmo").groundings) == 3
    assert json.loads((tmp_path / "traces.json").read_text())["out"] == str(tmp_path)
    assert str(tmp_path) in out.getvalue()


def test_example_groundings_land_on_their_scene_objects():
    """Each example's groundings hit the scene shape they name (the examples are honest)."""
    for rec in demo.example_records():
        trace = gk.get_parser(rec["dialect"], rec.get("frame")).parse(rec["completion"], gk.ImageSize(rec["width"], rec["height"]))
        scene = demo.draw_scene(rec["scene"], gk.ImageSize(rec["width"], rec["height"]))
        for g in trace.groundings:
            x1, y1, x2, y2 = gk.get_registry().grounding_type(g.type).bbox(g)
            cx, cy = (x1 + x2) / 2 * rec["width"], (y1 + y2) / 2 * rec["height"]
            assert scene.getpixel((int(cx), int(cy))) != (238, 232, 220), (rec["id"], g)
