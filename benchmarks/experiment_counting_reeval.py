"""Re-evaluate a finished counting run's checkpoints with the plan's current generation budget.

The runs recorded on 2026-12-02 generated with 96 new tokens, which let the grounded arms write
at most 3 points (18 tokens each); this re-runs only the evaluation stages (256 tokens) on the
same checkpoints and rewrites ``results.json`` and the report:

    python benchmarks/experiment_counting_reeval.py RUN_DIR SCALE ORIGINAL_RUN_DIR
"""

import json
import sys
import time
from pathlib import Path

from groundkit.experiments.counting import ARMS, evaluate_arm
from groundkit.experiments.plans import plan_for
from groundkit.experiments.results import summarize_arm, write_results

out = Path(sys.argv[1])
plan = plan_for(sys.argv[2], None)
stages = out / "stages"
ckpt = {"direct": json.loads((stages / "sft-direct.json").read_text())["result"]["checkpoint"],
        "grounded": json.loads((stages / "sft-grounded.json").read_text())["result"]["checkpoint"],
        "grounded+grpo": json.loads((stages / "grpo.json").read_text())["result"]["checkpoint"]}
ckpt = {a: c.replace(sys.argv[3], str(out)) for a, c in ckpt.items()}
traces = json.loads((stages / "traces.json").read_text())["result"]
minutes = sum(json.loads(p.read_text())["seconds"] for p in stages.glob("*.json") if not p.name.startswith("eval-")) / 60
start = time.monotonic()
evals = {a: evaluate_arm(out, plan, ckpt[a], a) for a in ARMS}
minutes += (time.monotonic() - start) / 60
arms = {a: summarize_arm(out, plan, a, evals[a], 0) for a in ARMS}
r = write_results(out, plan, arms, traces, minutes, 0)
r["note"] = "re-evaluated with max_new_tokens 256 (the run's 96-token budget capped the grounded arms at 3 points); GRPO rollouts were trained with 96"
(out / "results.json").write_text(json.dumps(r, indent=2, default=float))
for a, m in r["arms"].items():
    print(a, round(m["accuracy"], 3), [round(x, 3) for x in m["accuracy_ci"]], "in", round(m["accuracy_in_range"], 3), "f1", m["point_f1"] and round(m["point_f1"], 3), "pim", m["point_in_mask"] and round(m["point_in_mask"], 3), m["accuracy_by_count"])
print(r["comparisons"], r["minutes"])
