"""The experiment's ``report.html``: the table per arm, learning curves (PNG) and a gallery of
test scenes with each arm's rendered trace side by side."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

COLUMNS = [("accuracy", "accuracy"), ("accuracy_in_range", "in range"), ("accuracy_beyond_range", "beyond range"),
           ("format_valid", "format valid"), ("point_f1", "point F1"), ("point_in_mask", "point in mask"),
           ("image_reliance_final", "image reliance")]


def _fmt(value: Any) -> str:
    return "–" if value is None else f"{value:.3f}" if isinstance(value, float) else html.escape(str(value))


def _plot(path: Path, title: str, series: dict[str, list[list[float]]], ylabel: str) -> bool:
    """One PNG line plot of named (step, value) series; False when there is nothing to draw."""
    series = {k: v for k, v in series.items() if v}
    if not series:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.2), dpi=100)
    for name, points in series.items():
        ax.plot([p[0] for p in points], [p[1] for p in points], label=name, marker="." if len(points) < 30 else None)
    ax.set_title(title)
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


def _plots(folder: Path, results: dict[str, Any]) -> list[str]:
    arms = results["arms"]
    warmup = (results.get("warmup") or {}).get("curves", {})
    made = []
    jobs = [
        ("sft_loss.png", "SFT loss (completion tokens)",
         {"warm-up (shared)": warmup.get("loss", []), **{a: m["curves"].get("loss", []) for a, m in arms.items() if a != "grounded+grpo"}}, "loss"),
        ("image_reliance.png", "image reliance: loss(images swapped) - loss(true images)",
         {"warm-up (shared)": warmup.get("groundkit/image_reliance", []),
          **{a: m["curves"].get("groundkit/image_reliance", []) for a, m in arms.items()}}, "nats / token"),
    ]
    grpo = arms.get("grounded+grpo", {}).get("curves", {})
    terms = {k.removeprefix("rewards/").removesuffix("/mean"): v for k, v in grpo.items() if k.startswith("rewards/")}
    jobs.append(("grpo_rewards.png", "GRPO reward per step (mean and per term)", {"total": grpo.get("reward", []), **terms}, "reward"))
    for name, title, series, ylabel in jobs:
        if _plot(folder / name, title, series, ylabel):
            made.append(name)
    return made


def _gallery(out: Path, folder: Path, results: dict[str, Any], n: int) -> str:
    from PIL import Image

    from groundkit.render import render
    from groundkit.trace import Trace

    by_arm = {}
    for arm, m in results["arms"].items():
        path = Path(m["report"]).parent / "results.jsonl" if m.get("report") else None
        if path is None or not path.exists():
            continue
        by_arm[arm] = {r["id"]: r for r in (json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip())}
    if not by_arm:
        return ""
    first = next(iter(by_arm.values()))
    ids = list(first)[:n]
    rows = []
    for rid in ids:
        cells = []
        for arm, records in by_arm.items():
            r = records.get(rid)
            if r is None:
                cells.append("<td>–</td>")
                continue
            image_path = out / "scenes" / "test" / r["image"] if r.get("image") else None
            if image_path is not None and image_path.exists():
                with Image.open(image_path) as img:
                    picture = img.convert("RGB").resize((img.width * 2, img.height * 2), Image.NEAREST)
                if r.get("trace"):
                    picture = render(Trace.from_dict(r["trace"]), picture).convert("RGB")
                name = f"gallery_{len(rows)}_{arm.replace('+', '-')}.png"
                picture.save(folder / name)
                img_html = f'<img src="report/{name}">'
            else:
                img_html = "(no image)"
            cells.append(f"<td>{img_html}<br><b>{html.escape(str(r.get('status')))}</b>: answered "
                         f"{html.escape(str(r.get('predicted')))}<br><code>{html.escape(r.get('completion') or '')[:400]}</code></td>")
        question = html.escape(str(first[rid].get("question")))
        rows.append(f"<tr><th>{question}<br>truth: {html.escape(str(first[rid].get('truth')))}</th>{''.join(cells)}</tr>")
    head = "".join(f"<th>{html.escape(a)}</th>" for a in by_arm)
    return f"<h2>Gallery (test scenes)</h2><table><tr><th></th>{head}</tr>{''.join(rows)}</table>"


def _warmup_note(results: dict[str, Any]) -> str:
    warmup = results.get("warmup")
    if not warmup:
        return ""
    return (f"<p>Every arm starts from a shared warm-up of {warmup['steps']} steps (name the shapes' colours from left to "
            f"right: no coordinates, no counting); its image reliance at the end: {_fmt(warmup['image_reliance_final'])}.</p>")


def _difference(comparison: dict[str, Any]) -> str:
    """``+0.030 accuracy, 95% CI [...]`` (and the point F1 difference where both arms point)."""
    text = f"{comparison['accuracy_difference']:+.3f} accuracy, 95% CI [{_fmt(comparison['ci'][0])}, {_fmt(comparison['ci'][1])}]"
    if "point_f1_difference" in comparison:
        ci = comparison["point_f1_ci"]
        text += f"; {comparison['point_f1_difference']:+.3f} point F1, 95% CI [{_fmt(ci[0])}, {_fmt(ci[1])}]"
    return text


def write_report(out: Path, results: dict[str, Any], gallery: int | None = None) -> Path:
    folder = out / "report"
    folder.mkdir(parents=True, exist_ok=True)
    plots = _plots(folder, results)
    base = results["baselines"]
    header = "".join(f"<th>{label}</th>" for _, label in COLUMNS)
    rows = []
    for arm, m in results["arms"].items():
        ci = m.get("accuracy_ci") or [None, None]
        cells = [f"<td>{_fmt(m.get(k))}{f' [{_fmt(ci[0])}, {_fmt(ci[1])}]' if k == 'accuracy' else ''}</td>" for k, _ in COLUMNS]
        rows.append(f"<tr><th>{html.escape(arm)}</th>{''.join(cells)}</tr>")
    comparisons = "".join(f"<li>{html.escape(k)}: {_difference(v)}</li>" for k, v in results.get("comparisons", {}).items())
    by_count = "".join(f"<tr><th>{html.escape(a)}</th>{''.join(f'<td>{k}: {_fmt(v)}</td>' for k, v in m['accuracy_by_count'].items())}</tr>"
                       for a, m in results["arms"].items())
    images = "".join(f'<p><img src="report/{p}"></p>' for p in plots)
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>groundkit experiment: counting</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:4px 8px;vertical-align:top}}
code{{font-size:11px;white-space:pre-wrap;display:block;max-width:420px}}</style></head><body>
<h1>groundkit experiment: counting ({html.escape(results['scale'])} scale, seed {results['seed']})</h1>
<p>{results['test_records']} held-out test scenes; {results['minutes']:.1f} minutes of compute. Baselines: majority answer
({html.escape(str(base['majority_answer']))}) {_fmt(base['majority'])}, chance {_fmt(base['chance'])}.</p>
<table><tr><th>arm</th>{header}</tr>{''.join(rows)}</table>
<p>Accuracy with its 95% bootstrap CI; in range = counts seen in training (1..{results['plan']['train_max_count']}), beyond = larger.
Point F1 over every completion (0 without points); point in mask over completions with points.
Image reliance: the completion loss with the images swapped between held examples minus with the true images (0 = the image is ignored).</p>
{_warmup_note(results)}
<h2>Paired comparisons (same test scenes)</h2><ul>{comparisons}</ul>
<h2>Accuracy by true count</h2><table>{by_count}</table>
<h2>Learning curves</h2>{images}
{_gallery(out, folder, results, gallery if gallery is not None else results['plan'].get('gallery', 6))}
</body></html>"""
    path = out / "report.html"
    path.write_text(page, encoding="utf-8")
    return path
