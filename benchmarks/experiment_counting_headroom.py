"""How much can RL sharpening give a counting checkpoint? Greedy accuracy against sampled rollouts
(the temperature GRPO samples at) on the *validation* split of the probes (never the test split).

    python benchmarks/experiment_counting_headroom.py runs/counting-cpu/arms/grounded [CHECKPOINT ...]
        [--scenes runs/probes/data-192-6/validation] [--samples 8] [--temperature 0.7]

Per checkpoint: greedy accuracy; the mean accuracy of single samples; ``maj@k`` (the most frequent
of k sampled answers); ``pass@k`` (any of k right); the share of scenes whose k answers all agree.
GRPO mostly moves a policy's single-sample accuracy towards ``maj@k`` (sharpening): when ``maj@k``
is no better than greedy there is little for it to gain without learning to see better. Prints a
table and writes ``benchmarks/results/experiment_counting_headroom.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections import Counter
from pathlib import Path

from rich.console import Console
from rich.table import Table

from groundkit.backbones.generation import GenerationRequest, SamplingConfig, generate
from groundkit.backbones.loading import load_model
from groundkit.experiments import counting as C
from groundkit.experiments.plans import PLANS

RESULTS = Path(__file__).resolve().parent / "results" / "experiment_counting_headroom.json"


def answers(loaded, requests, plan, sampling: SamplingConfig | None) -> list[str | None]:
    results = generate(loaded, requests, dialect=C.DIALECT, frame=C.FRAME, types=C.TYPES,
                       max_new_tokens=plan.max_new_tokens, batch_size=32, instruction=plan.instruction, sampling=sampling)
    return [r.trace.answer if r.trace else None for r in results]


def headroom(checkpoint: str, scenes: Path, samples: int, temperature: float) -> dict[str, float | str | int]:
    plan = PLANS["cpu"]
    records = [json.loads(line) for line in (scenes / "scenes.jsonl").read_text(encoding="utf-8").splitlines()]
    requests = [GenerationRequest(scenes / "images" / f"{r['id']}.png", r["question"], r["id"]) for r in records]
    truth = [r["answer"] for r in records]
    loaded = load_model(checkpoint)
    greedy = answers(loaded, requests, plan, None)
    sampled = [answers(loaded, requests, plan, SamplingConfig(True, temperature, seed=k)) for k in range(samples)]
    per_scene = [[s[i] for s in sampled] for i in range(len(records))]

    def mean(values) -> float:
        return round(statistics.mean(float(v) for v in values), 3)

    return {"checkpoint": checkpoint, "scenes": len(records), "samples": samples, "temperature": temperature,
            "greedy": mean(g == t for g, t in zip(greedy, truth)),
            "sample_mean": mean(statistics.mean(a == t for a in answers_) for answers_, t in zip(per_scene, truth)),
            f"maj@{samples}": mean(Counter(a).most_common(1)[0][0] == t for a, t in zip(per_scene, truth)),
            f"pass@{samples}": mean(t in a for a, t in zip(per_scene, truth)),
            "all_agree": mean(len(set(a)) == 1 for a in per_scene)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoints", nargs="+")
    ap.add_argument("--scenes", type=Path, default=Path("runs/probes/data-192-6/validation"))
    ap.add_argument("--samples", type=int, default=8)
    ap.add_argument("--temperature", type=float, default=PLANS["cpu"].grpo_temperature)
    args = ap.parse_args()
    rows = [headroom(c, args.scenes, args.samples, args.temperature) for c in args.checkpoints]
    table = Table(title=f"RL headroom on {args.scenes} (T={args.temperature}, k={args.samples})")
    for key in rows[0]:
        table.add_column(key)
    for row in rows:
        table.add_row(*(str(v) for v in row.values()))
    Console().print(table)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({"benchmark": "experiment_counting_headroom", "rows": rows}, indent=1) + "\n",
                       encoding="utf-8")


if __name__ == "__main__":
    main()
