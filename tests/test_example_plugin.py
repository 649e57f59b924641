"""The third-party example package (examples/groundkit-line) parses, renders and is listed."""

from __future__ import annotations

import importlib
import json
import sys

from conftest import REPO
from PIL import Image
from typer.testing import CliRunner

import groundkit as gk
from groundkit.cli import app

TEXT = '<think>the rope <line label="rope">[(100, 500), (900, 500)]</line> crosses <point label="knot">(500, 500)</point></think><answer>1</answer>'


def load_line_plugin():
    src = str(REPO / "examples" / "groundkit-line" / "src")
    if src not in sys.path:
        sys.path.insert(0, src)
    return importlib.import_module("groundkit_line.plugin")


def test_line_type_parses_formats_renders_and_is_listed(fresh_registry):
    fresh_registry(("line", load_line_plugin()))
    trace = gk.parse(TEXT)
    line = trace.groundings[0]
    assert line.type == "line" and line.coords == (0.1, 0.5, 0.9, 0.5) and line.label == "rope"
    assert gk.format_trace(trace) == TEXT
    gtype = gk.get_registry().grounding_type("line")
    assert gtype.contains(line, 0.5, 0.505) and not gtype.contains(line, 0.5, 0.6)
    img = gk.render(trace, Image.new("RGB", (100, 100)))
    assert img.getpixel((50, 50)) != (0, 0, 0)
    listed = json.loads(CliRunner().invoke(app, ["plugins", "--json"]).output)
    line_plugin = next(p for p in listed["plugins"] if p["name"] == "line")
    assert line_plugin["registered"] == [{"kind": "grounding type", "name": "line"}]
    assert "line:" in gk.get_grammar("groundkit", types=["point", "line"]).text
