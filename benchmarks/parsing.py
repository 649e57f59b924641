"""Benchmark: parse time per input family and size (strict and lenient), and a GRPO-shaped batch.

Run: ``.venv/bin/python benchmarks/parsing.py`` (writes ``benchmarks/results/parsing.json``;
``--quick`` stops the curve at 100 KB).

Curve: for each family, texts of 10 KB, 100 KB and 1 MB in the ``groundkit`` and ``qwen-json``
dialects, parsed strictly (bad text raises; the error is part of the work) and leniently.
Families: ``valid`` (reasoning with groundings every ~60 characters), ``truncated`` (the same,
cut inside a grounding, no ``</think>``: an RL completion that hit the token budget),
``truncated_text`` (prose only, no closing tag), ``error_end`` (a valid trace followed by a
stray ``<``), ``bad_groundings`` (every third grounding malformed, degenerate or out of frame),
and pathological runs of ``<``, ``[``, ``{`` and digits. Target: <= 50 ms per 100 KB everywhere.

GRPO-shaped: 1,024 truncated completions of 16 KB (128 samples x 8 generations) scored by
every built-in reward term, strict and lenient reading; ground truth as in ``rewards.py``.

Times are the process's CPU time (median of repeats): the machine this runs on is shared, and
wall-clock time there measures the neighbours as much as the parser.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import random  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import groundkit as gk  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from rewards import TERMS, make_truth  # noqa: E402

SIZES = [10_000, 100_000, 1_000_000]
TARGET_MS_PER_100KB = 50.0


def grounding(dialect: str, rng: random.Random, bad: bool = False) -> str:
    x1, y1 = rng.randint(0, 800), rng.randint(0, 800)
    x2, y2 = x1 + rng.randint(10, 199), y1 + rng.randint(10, 199)
    if bad:  # malformed, degenerate or out of frame, in turn
        kind = rng.randrange(3)
        x2 = x1 - 5 if kind == 1 else x2
        y2 = 1500 if kind == 2 else y2
        if kind == 0:
            return {"groundkit": f'<box label="mug">[{x1}, {y1}, {x2}</box>', "qwen-json": f'{{"bbox_2d": [{x1}, {y1}, {x2}], "label": "mug"}}'}[dialect]
    if dialect == "qwen-json":
        return f'{{"bbox_2d": [{x1}, {y1}, {x2}, {y2}], "label": "mug"}}'
    if rng.random() < 0.5:
        return f'<point label="mug">({x1}, {y1})</point>'
    return f'<box label="mug">[{x1}, {y1}, {x2}, {y2}]</box>'


def body(dialect: str, size: int, rng: random.Random, bad_every: int = 0) -> str:
    parts, n, k = [], 0, 0
    while n < size:
        k += 1
        piece = "The mug on the left " + grounding(dialect, rng, bad=bool(bad_every) and k % bad_every == 0) + " is red. "
        parts.append(piece)
        n += len(piece)
    return "".join(parts)


def family(name: str, dialect: str, size: int, rng: random.Random) -> str:
    if name == "valid":
        return "<think>" + body(dialect, size, rng) + "</think><answer>3</answer>"
    if name == "truncated":
        text = "<think>" + body(dialect, size, rng)
        return text[: text.rindex("[") + 4]
    if name == "truncated_text":
        return "<think>" + ("the mug is left of the plate " * (size // 29 + 1))[:size]
    if name == "error_end":
        return "<think>" + body(dialect, size, rng) + "</think><answer>3</answer><"
    if name == "bad_groundings":
        return "<think>" + body(dialect, size, rng, bad_every=3) + "</think><answer>3</answer>"
    run = {"run_lt": "<", "run_bracket": "[", "run_brace": "{", "run_digits": "7"}[name]
    return "<think>" + run * size


FAMILIES = ["valid", "truncated", "truncated_text", "error_end", "bad_groundings", "run_lt", "run_bracket", "run_brace", "run_digits"]


def time_parse(parser: gk.TraceParser, text: str, lenient: bool, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.process_time()
        try:
            parser.parse(text, lenient=lenient)
        except gk.ParseError:
            pass
        times.append(time.process_time() - t0)
    return statistics.median(times)


def curve(sizes: list[int]) -> list[dict]:
    rows = []
    for dialect in ("groundkit", "qwen-json"):
        parser = gk.get_parser(dialect)
        parser.parse("<think>x</think><answer>1</answer>", lenient=True)  # build the lenient reader once
        for name in FAMILIES:
            for size in sizes:
                text = family(name, dialect, size, random.Random(size))
                for lenient in (False, True):
                    seconds = time_parse(parser, text, lenient, 3 if size >= 1_000_000 else 7)
                    rows.append({
                        "dialect": dialect, "family": name, "bytes": len(text), "reading": "lenient" if lenient else "strict",
                        "ms": seconds * 1e3, "ms_per_100kb": seconds * 1e3 * 100_000 / len(text),
                    })
    return rows


def grpo(reading: str) -> dict:
    rng = random.Random(0)
    truths_raw = [make_truth(rng, s) for s in range(128)]
    texts, truth_rows = [], []
    for t in truths_raw:
        for _ in range(8):
            text = "<think>" + body("groundkit", 16_000, rng, bad_every=7)
            texts.append(text[: 16_000])
            truth_rows.append(t)
    truths = [gk.GroundTruth.from_dict(t) for t in truth_rows]
    rewards = gk.RewardSet.from_spec(",".join(TERMS), reading=reading)
    times = []
    for _ in range(3):
        t0 = time.process_time()
        result = rewards(texts, truths)
        times.append(time.process_time() - t0)
    summary = result.summary()
    return {
        "reading": reading, "completions": len(texts), "bytes_each": 16_000, "seconds": statistics.median(times),
        "ms_per_completion": statistics.median(times) * 1e3 / len(texts),
        "box_iou_greedy_mean": summary["box_iou_greedy"]["mean"], "format_mean": summary["format"]["mean"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="curve up to 100 KB only")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "parsing.json"))
    args = ap.parse_args()
    rows = curve(SIZES[:2] if args.quick else SIZES)
    print(f"{'dialect':10} {'family':15} {'reading':8} " + " ".join(f"{s // 1000:>7}KB" for s in (SIZES[:2] if args.quick else SIZES)) + "  (ms per 100 KB)")
    worst = 0.0
    for dialect in ("groundkit", "qwen-json"):
        for name in FAMILIES:
            for reading in ("strict", "lenient"):
                cells = [r for r in rows if r["dialect"] == dialect and r["family"] == name and r["reading"] == reading]
                worst = max(worst, *(r["ms_per_100kb"] for r in cells))
                print(f"{dialect:10} {name:15} {reading:8} " + " ".join(f"{r['ms_per_100kb']:9.2f}" for r in cells))
    batches = [grpo("strict"), grpo("lenient")]
    for b in batches:
        print(f"GRPO batch ({b['reading']}): {b['completions']} truncated completions x 16 KB, all {len(TERMS)} terms: "
              f"{b['seconds'] * 1e3:.0f} ms ({b['ms_per_completion']:.2f} ms each); box_iou_greedy mean {b['box_iou_greedy_mean']}")
    print(f"worst: {worst:.2f} ms per 100 KB (target <= {TARGET_MS_PER_100KB})")
    out = {
        "machine": {"python": platform.python_version(), "processor": platform.processor() or platform.machine(), "threads": 1,
                    "clock": "process CPU time"},
        "target_ms_per_100kb": TARGET_MS_PER_100KB, "worst_ms_per_100kb": worst, "curve": rows, "grpo": batches,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
