"""``groundkit generate`` through the CLI: one image, and a resumable JSONL batch."""

from __future__ import annotations

import json

from PIL import Image
from typer.testing import CliRunner

from groundkit.cli import app

runner = CliRunner()


def test_generate_one_image_reports_unparseable_output(tmp_path):
    img = tmp_path / "img.png"
    Image.new("RGB", (120, 90), (200, 20, 20)).save(img)
    out = tmp_path / "trace.json"
    result = runner.invoke(app, ["generate", "--model", "tiny:qwen2-vl", "--image", str(img), "--question", "How many?",
                                 "--no-constrained", "--max-new-tokens", "4", "-o", str(out)])
    data = json.loads(out.read_text())
    assert data["width"] == 120 and data["height"] == 90 and data["question"] == "How many?"
    # a random unconstrained model does not write the format: a clear parse error and exit 1
    assert result.exit_code == 1 and data["error"].startswith("record 0, line 1, column 1")


def test_generate_jsonl_batch_resumes(tmp_path):
    for i, size in enumerate([(64, 48), (80, 120), (50, 50)]):
        Image.new("RGB", size).save(tmp_path / f"{i}.png")
    records = tmp_path / "in.jsonl"
    records.write_text("".join(json.dumps({"id": f"r{i}", "image": f"{i}.png", "question": "q?"}) + "\n" for i in range(3)))
    out = tmp_path / "out.jsonl"
    out.write_text(json.dumps({"id": "r1", "completion": "earlier"}) + "\n" + '{"id": "r2", "compl')  # r2 was cut by a kill
    args = ["generate", "--model", "tiny:gemma3", "--input", str(records), "--no-constrained", "--max-new-tokens", "3",
            "--batch-size", "2", "-o", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "2 generated, 1 already done" in result.output
    rows = [json.loads(line) for line in out.read_text().splitlines() if line.startswith("{") and line.endswith("}")]
    assert sorted(r["id"] for r in rows) == ["r0", "r1", "r2"]
    again = runner.invoke(app, args)
    assert "0 generated, 3 already done" in again.output


def test_generate_needs_image_or_input():
    result = runner.invoke(app, ["generate", "--model", "tiny:gemma3"])
    assert result.exit_code == 1 and "either --image" in result.output
