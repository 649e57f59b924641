"""The HTML report of an eval run: summary tables and a gallery of examples (correct / wrong /
invalid per benchmark) with the predicted groundings drawn over the images."""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

from groundkit.errors import GroundkitError
from groundkit.eval.summary import SHORT, fmt
from groundkit.images import IMAGE_ERRORS
from groundkit.render import render
from groundkit.trace import Trace

STATUSES = ("correct", "wrong", "invalid")
THUMB = 360
CSS = """
body{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:1400px}
table{border-collapse:collapse;margin:8px 0 24px}th,td{border:1px solid #ccc;padding:4px 8px;text-align:right}
th:first-child,td:first-child{text-align:left}th{background:#f3f3f3}
.gallery{display:flex;flex-wrap:wrap;gap:12px}.card{border:1px solid #ccc;border-radius:6px;padding:8px;width:370px;font-size:13px}
.card img{max-width:360px;display:block;margin-bottom:6px}.correct{border-left:6px solid #2a2}.wrong{border-left:6px solid #d80}
.invalid{border-left:6px solid #c22}.badge{font-weight:bold;text-transform:uppercase}pre{white-space:pre-wrap;font-size:12px;background:#f7f7f7;padding:4px}
"""
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _table(title: str, groups: dict[str, dict[str, Any]], metrics: Sequence[str]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in (title, "n", "correct", "wrong", "invalid", *(SHORT.get(m, m) for m in metrics)))
    body = "".join(
        "<tr>" + f"<td>{_e(name)}</td>" + "".join(f"<td>{s[k]}</td>" for k in ("n", "correct", "wrong", "invalid"))
        + "".join(f"<td>{fmt(s[m])}</td>" for m in metrics) + "</tr>"
        for name, s in groups.items()
    )
    return f"<table><tr>{head}</tr>{body}</table>"




def picture(row: dict[str, Any], target: Path) -> str | None:
    """Draw the row's predicted groundings over its image; a grey placeholder (saying why) when the
    image is missing, corrupt or too large (a decompression bomb). Returns that reason, or None."""
    image, why = None, None
    if not row.get("image") or not Path(row["image"]).is_file():
        why = "image not available"
    else:
        try:
            with Image.open(row["image"]) as img:
                img.thumbnail((THUMB * 4, THUMB * 4))  # draft-decodes large JPEGs; bombs raise in open()
                image = img.convert("RGB")
        except IMAGE_ERRORS as exc:
            why = f"image not shown: {type(exc).__name__}"
    if image is None:
        image = _placeholder(row, why or "image not available")
    if row.get("trace"):
        try:
            image = render(Trace.from_dict(row["trace"]), image)
        except GroundkitError as exc:
            why = f"groundings not drawn: {exc}"
    image.thumbnail((THUMB, THUMB))
    target.parent.mkdir(parents=True, exist_ok=True)
    image.save(target)
    return why


def _placeholder(row: dict[str, Any], text: str) -> Image.Image:
    """A grey picture with the row's aspect ratio (bounded: the row's size may be anything)."""
    w, h = row.get("width"), row.get("height")
    if not (isinstance(w, int) and isinstance(h, int) and w > 0 and h > 0):
        w, h = 320, 240
    scale = min(1.0, THUMB / max(w, h))
    image = Image.new("RGB", (max(1, round(w * scale)), max(1, round(h * scale))), (200, 200, 200))
    ImageDraw.Draw(image).text((8, 8), text, fill=(60, 60, 60))
    return image


def _card(row: dict[str, Any], src: str, why: str | None = None) -> str:
    metrics = ", ".join(f"{SHORT.get(k, k)} {fmt(v)}" for k, v in row["metrics"].items() if v is not None and k not in ("answer", "format"))
    error = f"<div>parse error: {_e(row['parse_error'])}</div>" if row.get("parse_error") else ""
    error += f"<div>{_e(why)}</div>" if why else ""
    return (
        f'<div class="card {row["status"]}"><img src="{_e(src)}" alt="{_e(row["id"])}">'
        f'<div><span class="badge">{_e(row["status"])}</span> {_e(row["bench"])} / {_e(row["id"])} ({_e(row["task"])}, {_e(row["grounding"])})</div>'
        f"<div><b>Q:</b> {_e(row['question'])}</div><div><b>truth:</b> {_e(row['truth'])} &nbsp; <b>predicted:</b> {_e(row['predicted'])}</div>"
        f"<div>{_e(metrics)}</div>{error}<details><summary>completion</summary><pre>{_e(row['completion'])}</pre></details></div>"
    )


def write_report(root: Path, rows: Sequence[dict[str, Any]], summary: dict[str, Any], problems: Sequence[str], config: Any, per_status: int = 6) -> Path:
    """Write ``report.html`` and its pictures under ``root/gallery``; returns the report's path."""
    metrics = list(getattr(config, "metric_names", config.metrics))
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>groundkit eval</title><style>{CSS}</style></head><body>",
        "<h1>groundkit eval</h1>",
        f"<p>dialect <b>{_e(config.dialect)}</b>; benchmarks: {_e(', '.join(config.benches))}; "
        f"{'model ' + _e(config.model) if config.model else 'completions ' + _e(config.completions)}; {len(rows)} records.</p>",
        "<p>Grounding metrics average the valid completions that use the metric's grounding type.</p>",
        "<h2>Summary</h2>", _table("all", {"all": summary["overall"]}, metrics),
        _table("benchmark", summary["by_benchmark"], metrics), _table("benchmark / task", summary["by_benchmark_task"], metrics),
        _table("task", summary["by_task"], metrics), _table("grounding", summary["by_grounding"], metrics),
    ]
    if problems:
        items = "".join(f"<li>{_e(p)}</li>" for p in problems[:200])
        more = f"<li>... and {len(problems) - 200} more</li>" if len(problems) > 200 else ""
        parts.append(f"<h2>Problems ({len(problems)})</h2><ul>{items}{more}</ul>")
    parts.append("<h2>Gallery</h2>")
    for bench in sorted({r["bench"] for r in rows}):
        for status in STATUSES:
            chosen = [r for r in rows if r["bench"] == bench and r["status"] == status][:per_status]
            if not chosen:
                continue
            cards = []
            for r in chosen:
                src = f"gallery/{_UNSAFE.sub('_', bench)}/{_UNSAFE.sub('_', r['id'])}.png"
                why = picture(r, root / src)
                cards.append(_card(r, src, why))
            parts.append(f"<h3>{_e(bench)}: {status}</h3><div class='gallery'>{''.join(cards)}</div>")
    parts.append("</body></html>")
    target = root / "report.html"
    target.write_text("\n".join(parts), encoding="utf-8")
    return target
