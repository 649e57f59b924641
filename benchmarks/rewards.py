"""Benchmark: parse + every built-in reward term for 1,024 completions with 20 groundings each, on one core.

Run: ``.venv/bin/python benchmarks/rewards.py`` (writes ``benchmarks/results/rewards.json``).

The batch is GRPO-shaped: 128 samples x 8 generations. Each sample has 5 annotated objects
(640x480 COCO RLE masks, boxes, points); each completion has 8 points, 8 boxes and 4
polygon masks with labels, and a count answer. Target: parse + all terms <= 100 ms.
Every repeat builds the ground truth and the batch afresh (no cache survives a repeat);
ground-truth decoding is timed separately because training caches it across steps.
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
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

import groundkit as gk  # noqa: E402

TERMS = [
    "format", "answer", "point_in_mask", "point_f1", "box_iou_greedy", "box_iou_hungarian", "mask_iou",
    "count_consistency", "duplicate_penalty", "grounded_if_correct", "consistency",
]
LABELS = ["mug", "plate", "chair", "lamp", "book"]
W, H = 640, 480


def make_truth(rng: random.Random, sid: int) -> dict:
    objects = []
    for label in LABELS:
        x1, y1 = rng.randint(0, W - 120), rng.randint(0, H - 120)
        x2, y2 = x1 + rng.randint(30, 120), y1 + rng.randint(30, 120)
        mask = np.zeros((H, W), dtype=bool)
        mask[y1:y2, x1:x2] = True
        mask[y1 : (y1 + y2) // 2, x1 : (x1 + x2) // 2] = False  # an L shape: mask != box
        objects.append({"label": label, "box": [x1 / W, y1 / H, x2 / W, y2 / H], "mask": gk.rle_encode(mask),
                        "points": [[(x2 - 5) / W, (y2 - 5) / H]]})
    return {"id": f"s{sid}", "width": W, "height": H, "answer": str(rng.randint(1, 8)), "answer_type": "count",
            "objects": objects}


def make_completion(rng: random.Random, truth: dict) -> str:
    objs = truth["objects"]
    parts = ["<think>Looking at the scene. "]
    for k in range(20):
        o = objs[(k // 4) % len(objs)]
        x1, y1, x2, y2 = (int(v * 1000) for v in o["box"])
        j = lambda v: min(1000, max(0, v + rng.randint(-15, 15)))  # noqa: E731
        label = o["label"] if rng.random() < 0.8 else "thing"
        if k % 5 in (0, 1):
            parts.append(f'The {label} <point label="{label}">({j((x1 + x2) // 2)}, {j((y1 + y2) // 2)})</point> is here. ')
        elif k % 5 in (2, 3):
            a, b = sorted((j(x1), j(x2)))
            c, d = sorted((j(y1), j(y2)))
            parts.append(f'A {label} <box label="{label}">[{a}, {c}, {max(b, a + 1)}, {max(d, c + 1)}]</box> next to it. ')
        else:
            parts.append(f'Its outline <mask label="{label}">[({j(x1)}, {j(y1)}), ({j(x2)}, {j(y1)}), '
                         f'({j(x2)}, {j(y2)}), ({j(x1)}, {j(y2)})]</mask>. ')
    answer = truth["answer"] if rng.random() < 0.5 else str(rng.randint(1, 8))
    return "".join(parts) + f"</think><answer>{answer}</answer>"


def run_once(rs: gk.RewardSet, records: list[dict], texts: list[str], groups: list[str]) -> dict[str, float]:
    times: dict[str, float] = {}
    t0 = time.perf_counter()
    by_id = {r["id"]: gk.GroundTruth.from_dict(r) for r in records}
    truths = [by_id[g] for g in groups]
    times["ground truth (decode, cached in training)"] = time.perf_counter() - t0
    batch = rs.batch(texts, truths, groups=groups)
    t0 = time.perf_counter()
    batch.parse_all()
    times["parse"] = time.perf_counter() - t0
    for term, _ in rs.terms:
        t0 = time.perf_counter()
        batch.scores(term)
        times[term.name] = time.perf_counter() - t0
    t0 = time.perf_counter()
    rs.score(batch)
    times["weighted total"] = time.perf_counter() - t0
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--completions", type=int, default=1024)
    ap.add_argument("--generations", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "rewards.json")
    args = ap.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    rng = random.Random(0)
    records = [make_truth(rng, s) for s in range(args.completions // args.generations)]
    groups = [r["id"] for r in records for _ in range(args.generations)]
    by_id = {r["id"]: r for r in records}
    texts = [make_completion(rng, by_id[g]) for g in groups]
    rs = gk.RewardSet.from_spec(",".join(TERMS))
    run_once(rs, records[:2], texts[:16], groups[:16])  # warm up: grammar build, imports
    runs = [run_once(rs, records, texts, groups) for _ in range(args.repeats)]
    median = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    scored = [k for k in median if not k.startswith("ground truth")]
    total = sum(median[k] for k in scored)
    n_groundings = len(gk.parse(texts[0]).groundings)
    print(f"{args.completions} completions x {n_groundings} groundings, one core, median of {args.repeats}")
    print(f"{'stage':44s} {'ms':>9s} {'share':>7s}")
    for k, v in median.items():
        share = f"{v / total:7.1%}" if k in scored else "      -"
        print(f"{k:44s} {v * 1e3:9.1f} {share}")
    print(f"{'parse + all terms':44s} {total * 1e3:9.1f}   (target <= 100 ms)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "completions": args.completions, "groundings_per_completion": n_groundings, "repeats": args.repeats,
        "median_ms": {k: round(v * 1e3, 2) for k, v in median.items()},
        "parse_plus_terms_ms": round(total * 1e3, 2), "parse_share": round(median["parse"] / total, 3),
        "target_ms": 100, "python": platform.python_version(), "machine": platform.machine(),
        "processor": platform.processor() or platform.machine(),
    }, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
