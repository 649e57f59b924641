"""The embedded demo: parse, validate, convert and render the shipped example traces.

Run with ``make demo`` or ``python -m groundkit.demo --out DIR``.
"""

from __future__ import annotations

import argparse
import json
from importlib import resources
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw
from rich.console import Console
from rich.table import Table

from groundkit.errors import ParseError
from groundkit.formatter import format_trace
from groundkit.frames import ImageSize
from groundkit.parser import get_parser
from groundkit.render import render


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


def run(out: Path, console: Console) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    records = example_records()
    table = Table(title="example traces")
    for col in ("id", "dialect", "frame", "groundings", "answer", "picture"):
        table.add_column(col)
    summary: dict[str, Any] = {"records": [], "out": str(out)}
    for rec in records:
        size = ImageSize(rec["width"], rec["height"])
        parser = get_parser(rec["dialect"], rec.get("frame"))
        trace = parser.parse(rec["completion"], size)
        scene = draw_scene(rec["scene"], size)
        picture = out / f"{rec['id']}.png"
        render(trace, scene).save(picture)
        kinds = ", ".join(sorted({f"{len(trace.of_type(t))} {t}" for t in {g.type for g in trace.groundings}}))
        table.add_row(rec["id"], rec["dialect"], parser.grammar.frame.name, kinds, trace.answer or "", str(picture))
        summary["records"].append({"id": rec["id"], "dialect": rec["dialect"], "trace": trace.to_dict(), "picture": str(picture)})
    console.print(table)

    first = records[0]
    size = ImageSize(first["width"], first["height"])
    cut = first["completion"][: len(first["completion"]) // 2]
    try:
        get_parser(first["dialect"]).parse(cut, size)
    except ParseError as err:
        console.print(f"[bold]validation[/] of a completion cut in half is reported, not crashed on:\n{err}")
        summary["truncated_error"] = {"line": err.line, "column": err.column, "truncated": err.truncated}

    tree = next(r for r in records if r["dialect"] == "treevgr")
    converted = {
        "treevgr->groundkit": format_trace(get_parser("treevgr").parse(tree["completion"]), "groundkit"),
        "groundkit->molmo": format_trace(get_parser("groundkit").parse(first["completion"]), "molmo"),
        "groundkit->qwen-json (abs-resized)": format_trace(
            get_parser("groundkit").parse(first["completion"]), "qwen-json", "abs-resized", image_size=size
        ),
    }
    for name, text in converted.items():
        console.print(f"[bold]convert {name}[/]\n{text}")
    summary["converted"] = converted
    (out / "traces.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    console.print(f"\nwrote {len(records)} pictures and traces.json to [bold]{out}[/]")
    return summary


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", type=Path, default=Path("demo-output"))
    args = ap.parse_args(argv)
    run(args.out, Console(width=140))


if __name__ == "__main__":
    main()
