"""The embedded demo: synthetic scenes -> grounded completions (a noisy oracle, and a tiny
random Qwen2.5-VL under constrained decoding) -> ``groundkit eval`` -> HTML reports.

Run with ``make demo`` or ``python -m groundkit.demo --out DIR``. The shipped example traces
(one per dialect, with the scene each describes) are here too, for docs and tests.
"""

from __future__ import annotations

import argparse
import json
from importlib import resources
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw
from rich.console import Console

from groundkit.eval import EvalConfig, evaluate, summary_table
from groundkit.frames import ImageSize
from groundkit.rewards.groundtruth import load_ground_truth
from groundkit.scenes import generate_scenes
from groundkit.scenes.simulate import simulate_completions


def example_records() -> list[dict[str, Any]]:
    """The shipped example traces (one per dialect) with the scene they describe."""
    text = resources.files("groundkit.data").joinpath("example_traces.jsonl").read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def draw_scene(shapes: list[dict[str, Any]], size: ImageSize) -> Image.Image:
    """Draw a record's scene (rel-1000 shapes) so the groundings have something to point at."""
    img = Image.new("RGB", (size.width, size.height), (238, 232, 220))
    d = ImageDraw.Draw(img)
    sx, sy = size.width / 1000, size.height / 1000
    for s in shapes:
        if s["shape"] == "circle":
            (cx, cy), r = s["center"], s["radius"]
            d.ellipse([cx * sx - r * sx, cy * sy - r * sx, cx * sx + r * sx, cy * sy + r * sx], fill=s["color"])
        elif s["shape"] == "rect":
            x1, y1, x2, y2 = s["box"]
            d.rectangle([x1 * sx, y1 * sy, x2 * sx, y2 * sy], fill=s["color"])
        else:
            d.polygon([(x * sx, y * sy) for x, y in s["points"]], fill=s["color"])
    return img


def run(out: Path, console: Console, n: int = 40, seed: int = 0, model_records: int = 8) -> dict[str, Any]:
    """Generate scenes; evaluate noisy-oracle grounded completions for them, then a tiny
    random-initialised Qwen2.5-VL generating with grammar-constrained decoding; write the
    HTML reports."""
    out.mkdir(parents=True, exist_ok=True)
    generate_scenes(out / "scenes", n, seed, size="small")
    truths = load_ground_truth(out / "scenes" / "scenes.jsonl").values()
    completions = out / "completions.jsonl"
    rows = simulate_completions(truths, seed=seed + 1, wrong=0.25, invalid=0.1)
    completions.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    config = EvalConfig([f"scenes:{out / 'scenes'}"], completions=str(completions))
    result = evaluate(config, out / "eval", fresh=True, gallery=4)
    console.print(summary_table(result.summary, config.metrics, title=f"groundkit eval: {n} synthetic scenes, noisy-oracle completions"))
    console.print(f"scenes: {out / 'scenes'}  completions: {completions}")
    console.print(f"report: [bold]{result.report}[/]")
    model = EvalConfig([f"scenes:{out / 'scenes'}"], model="tiny:qwen2.5-vl", limit=model_records, max_new_tokens=64)
    generated = evaluate(model, out / "eval-model", fresh=True, gallery=4)
    console.print(summary_table(generated.summary, model.metrics, title=(
        f"groundkit eval: tiny random Qwen2.5-VL, constrained decoding, {model_records} scenes "
        "(random weights: answers are noise, every completion is well-formed)")))
    console.print(f"report: [bold]{generated.report}[/]")
    return {"out": str(out), "report": str(result.report), "summary": result.summary, "problems": result.problems,
            "model_report": str(generated.report), "model_summary": generated.summary}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", type=Path, default=Path("demo-output"))
    args = ap.parse_args(argv)
    run(args.out, Console(width=140))


if __name__ == "__main__":
    main()
