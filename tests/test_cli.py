"""The CLI through typer's CliRunner (and a subprocess where the environment matters)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from PIL import Image
from typer.testing import CliRunner

import groundkit as gk
from groundkit.cli import app

runner = CliRunner()
GOOD = '<think>a mug <point label="mug">(212, 533)</point> and <box label="plate">[300, 420, 520, 610]</box></think><answer>1</answer>'


def invoke(*args: str, input: str | None = None):
    return runner.invoke(app, list(args), input=input)


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" if not isinstance(r, str) else r + "\n" for r in rows))
    return path


def test_help_lists_commands():
    result = invoke("--help")
    assert result.exit_code == 0
    for cmd in ("plugins", "grammar", "parse", "validate", "convert", "render"):
        assert cmd in result.output


def test_plugins_table_and_json():
    result = invoke("plugins")
    assert result.exit_code == 0 and "builtin" in result.output and "grounding type: point" in result.output
    data = json.loads(invoke("plugins", "--json").output)
    names = {p["name"]: p for p in data["plugins"]}
    assert {"point", "box", "mask", "formats", "frames"} <= set(names)
    assert names["point"]["origin"] == "builtin" and names["point"]["version"] == gk.__version__
    assert data["failures"] == []


def test_grammar_prints_the_composed_grammar_that_lark_accepts():
    result = invoke("grammar", "--dialect", "groundkit", "--types", "point,box")
    assert result.exit_code == 0
    assert "grounding: point | box" in result.output and "NUM: /" in result.output
    import lark

    lark.Lark(result.output, parser="lalr")
    bad = invoke("grammar", "--dialect", "molmo", "--types", "box")
    assert bad.exit_code == 1 and "molmo" in bad.output and "supports: point" in bad.output


def test_parse_prints_json(tmp_path):
    f = tmp_path / "t.txt"
    f.write_text(GOOD)
    result = invoke("parse", str(f))
    assert result.exit_code == 0
    trace = gk.Trace.from_dict(json.loads(result.output))
    assert [g.type for g in trace.groundings] == ["point", "box"]


def test_parse_jsonl_to_file_reports_bad_records(tmp_path):
    src = write_jsonl(tmp_path / "c.jsonl", [{"id": "a", "completion": GOOD}, {"id": "b", "completion": "<think>x"}])
    out = tmp_path / "out.jsonl"
    result = invoke("parse", str(src), "-o", str(out))
    assert result.exit_code == 1
    assert "record b, line 1, column 9" in result.output
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in lines] == ["a"]


def test_validate_reports_each_bad_record_and_a_summary(tmp_path):
    src = write_jsonl(
        tmp_path / "c.jsonl",
        [
            {"id": "ok", "completion": GOOD},
            {"id": "cut", "completion": GOOD[:40]},
            "{not json",
            {"id": "nofield", "prompt": "x"},
            {"id": "oob", "completion": "<think><point>(1, 2000)</point></think><answer>1</answer>"},
        ],
    )
    result = invoke("validate", str(src))
    assert result.exit_code == 1
    out = result.output
    assert "record cut, line 1, column 41: text ended" in out or "record cut, line 1, column 41" in out
    assert "record line 3: not JSON" in out
    assert "record nofield: no text field" in out
    assert "record oob, line 1, column 19" in out and "outside [0, 1000]" in out
    assert "5 records: 1 valid, 4 invalid" in out
    ok = invoke("validate", str(write_jsonl(tmp_path / "ok.jsonl", [{"completion": GOOD}])))
    assert ok.exit_code == 0 and "1 valid, 0 invalid" in ok.output


def test_validate_uses_per_record_image_sizes(tmp_path):
    rec = {"id": "q", "completion": '<think>{"point_2d": [640, 10]}</think><answer>1</answer>', "width": 640, "height": 480}
    src = write_jsonl(tmp_path / "q.jsonl", [rec])
    assert invoke("validate", str(src), "--dialect", "qwen-json", "--frame", "abs-original").exit_code == 0
    too_big = invoke("validate", str(src), "--dialect", "qwen-json", "--frame", "abs-resized")
    assert too_big.exit_code == 0  # 640 <= 644 (resized width)
    missing = invoke("validate", str(write_jsonl(tmp_path / "m.jsonl", [{"completion": rec["completion"]}])), "--dialect", "qwen-json", "--frame", "abs-original")
    assert missing.exit_code == 1 and "needs the image size" in missing.output


def test_convert_treevgr_to_groundkit(tmp_path):
    f = tmp_path / "t.txt"
    f.write_text("<think>the plate <box>[300,420,520,610]</box></think><answer>B</answer>")
    result = invoke("convert", str(f), "--from", "treevgr", "--to", "groundkit")
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "<think>the plate <box>[300, 420, 520, 610]</box></think><answer>B</answer>"
    jsonl = write_jsonl(tmp_path / "c.jsonl", [{"id": "a", "completion": GOOD, "width": 640, "height": 480}])
    result = invoke("convert", str(jsonl), "--from", "groundkit", "--to", "qwen-json", "--to-frame", "abs-resized")
    row = json.loads(result.output)
    assert row["id"] == "a" and row["dialect"] == "qwen-json" and '"point_2d": [137, 254]' in row["completion"]
    lossy = invoke("convert", str(jsonl), "--from", "groundkit", "--to", "treevgr")
    assert lossy.exit_code == 1 and "--lossy" in lossy.output
    dropped = invoke("convert", str(jsonl), "--from", "groundkit", "--to", "treevgr", "--lossy")
    assert dropped.exit_code == 0 and "<point>[212,533]</point>" in json.loads(dropped.output)["completion"]
    mask = write_jsonl(tmp_path / "m.jsonl", [{"id": "m", "completion": "<think><mask>[(1, 2), (30, 4), (5, 60)]</mask></think><answer>1</answer>"}])
    result = invoke("convert", str(mask), "--from", "groundkit", "--to", "treevgr")
    assert result.exit_code == 1 and "record m: dialect 'treevgr' (types box, point) cannot write a 'mask' grounding" in result.output


def test_render_draws_on_the_image(tmp_path):
    img = tmp_path / "img.png"
    Image.new("RGB", (200, 100), (0, 0, 0)).save(img)
    f = tmp_path / "t.txt"
    f.write_text(GOOD)
    out = tmp_path / "out.png"
    result = invoke("render", str(f), "--image", str(img), "-o", str(out))
    assert result.exit_code == 0, result.output
    drawn = Image.open(out)
    assert drawn.size == (200, 100)
    assert drawn.getpixel((int(0.3 * 200), int(0.5 * 100))) != (0, 0, 0)  # the box's left edge
    missing = invoke("render", str(f), "--image", str(tmp_path / "nope.png"), "-o", str(out))
    assert missing.exit_code == 1 and "image not found" in missing.output


def test_errors_are_one_message_unless_debug(tmp_path, monkeypatch):
    result = invoke("parse", str(tmp_path / "missing.txt"))
    assert result.exit_code == 1 and result.output.strip() == f"error: file not found: {tmp_path / 'missing.txt'}"
    monkeypatch.setenv("GROUNDKIT_DEBUG", "1")
    result = invoke("parse", str(tmp_path / "missing.txt"))
    assert isinstance(result.exception, gk.DataError)


def make_dist(root, name, module_source, entry="plugin"):
    """A real installed distribution (dist-info with entry points) on a path."""
    pkg = name.replace("-", "_")
    (root / f"{pkg}.py").write_text(module_source)
    info = root / f"{pkg}-9.9.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 9.9\n")
    (info / "entry_points.txt").write_text(f"[groundkit]\n{entry} = {pkg}\n")


def run_cli(args, env_extra, cwd):
    env = {**os.environ, **env_extra}
    return subprocess.run([sys.executable, "-m", "groundkit.cli", *args], capture_output=True, text=True, env=env, cwd=cwd)


@pytest.mark.slow
def test_a_plugin_that_fails_to_import_is_reported_by_distribution(tmp_path):
    make_dist(tmp_path, "broken-plugin", "raise ImportError('missing dependency foo')\n", entry="broken")
    env = {"PYTHONPATH": str(tmp_path)}
    result = run_cli(["plugins", "--json"], env, tmp_path)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["failures"] == [{"name": "broken", "distribution": "broken-plugin", "error": "ImportError: missing dependency foo"}]
    assert "point" in {p["name"] for p in data["plugins"]}
    parsed = run_cli(["grammar"], env, tmp_path)
    assert parsed.returncode == 0
    strict = run_cli(["plugins"], {**env, "GROUNDKIT_STRICT_PLUGINS": "1"}, tmp_path)
    assert strict.returncode != 0 and "missing dependency foo" in strict.stderr


@pytest.mark.slow
def test_a_third_party_duplicate_is_rejected_with_a_warning_naming_both(tmp_path):
    source = "import groundkit\n@groundkit.hookimpl\ndef register_frames(register):\n    register(groundkit.Frame('unit', scale=1.0))\n"
    make_dist(tmp_path, "copy-frames", source, entry="copyframes")
    result = run_cli(["plugins"], {"PYTHONPATH": str(tmp_path)}, tmp_path)
    assert result.returncode == 0  # every command keeps working
    assert "frame 'unit' is registered twice: by plugin 'frames' (groundkit" in result.stderr
    assert "by plugin 'copyframes' (copy-frames 9.9)" in result.stderr
    assert run_cli(["grammar"], {"PYTHONPATH": str(tmp_path)}, tmp_path).returncode == 0
    strict = run_cli(["plugins"], {"PYTHONPATH": str(tmp_path), "GROUNDKIT_STRICT_PLUGINS": "1"}, tmp_path)
    assert strict.returncode == 1 and "frame 'unit' is registered twice" in strict.stderr
