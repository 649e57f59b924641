"""Does GRPO's loss see the distribution its rollouts were sampled from? One step of the counting
experiment's GRPO config (constrained rollouts, temperature, mask-consistent log-probs) from a
grounded checkpoint: the grammar processor's scores at each generation step, with the temperature,
against the log-probs the policy loss uses, token by token.

    python benchmarks/experiment_counting_logps.py runs/counting-cpu [--scale cpu]

Prints the gaps and writes ``benchmarks/results/experiment_counting_logps.json``. (The suite checks
the same on tiny backbones: ``tests/test_training_grpo.py``.)
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from groundkit.experiments import counting as C
from groundkit.experiments.plans import PLANS
from groundkit.training.config import load_config
from groundkit.training.grpo import build_grpo

RESULTS = Path(__file__).resolve().parent / "results" / "experiment_counting_logps.json"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", type=Path, help="an experiment folder with a trained grounded arm")
    ap.add_argument("--scale", default="cpu")
    args = ap.parse_args()
    plan = PLANS[args.scale]
    traces = json.loads((args.run / "stages" / "traces.json").read_text(encoding="utf-8"))["result"]
    cfg = C.grpo_config(args.run / "logps-check", plan, str(args.run / "arms" / "grounded"), traces, 0)
    cfg["trl"]["max_steps"] = 1
    trainer = build_grpo(load_config(cfg, "grpo")).trainer

    recorded, outputs, loss_logps = [], [], []
    make_processor, generate_and_score = trainer.gk_processor, trainer._generate_and_score_completions
    logps_fn = trainer._get_per_token_logps_and_entropies

    def recording_processor(sizes):
        processor = make_processor(sizes)
        call = type(processor).__call__
        if not getattr(call, "recording", False):
            def record(self, input_ids, scores):
                out = call(self, input_ids, scores)
                recorded.append(out.detach().clone())
                return out

            record.recording = True
            type(processor).__call__ = record
        return processor

    def capture_outputs(inputs):
        outputs.append(generate_and_score(inputs))
        return outputs[-1]

    def capture_logps(model, input_ids, attention_mask, logits_to_keep, *a, **kw):
        result = logps_fn(model, input_ids, attention_mask, logits_to_keep, *a, **kw)
        if kw.get("compute_entropy"):
            loss_logps.append((input_ids.clone(), result[0].detach().clone()))
        return result

    trainer.gk_processor = recording_processor
    trainer._generate_and_score_completions = capture_outputs
    trainer._get_per_token_logps_and_entropies = capture_logps
    trainer.train()

    out = outputs[0]
    ids, mask = out["completion_ids"], out["completion_mask"].bool()
    steps = torch.stack(recorded, 1)
    n = min(steps.size(1), ids.size(1))
    sampled = torch.log_softmax(steps[:, :n].float() / trainer.temperature, -1).gather(-1, ids[:, :n, None]).squeeze(-1)
    rows = torch.cat([out["prompt_ids"], out["completion_ids"]], 1)
    inputs, logps = loss_logps[0]
    gaps = []
    for i in range(inputs.size(0)):  # TRL shuffles rows between generation and loss: match them by content
        row = (rows == inputs[i]).all(1).nonzero()[0, 0]
        keep = mask[row, :n]
        gaps.append(logps[i, :n][keep] - sampled[row][keep])
    gap = torch.cat(gaps)
    result = {"benchmark": "experiment_counting_logps", "scale": args.scale, "rollouts": int(inputs.size(0)),
              "temperature": trainer.temperature, "tokens": int(gap.numel()), "mean_abs_gap": float(gap.abs().mean()),
              "max_abs_gap": float(gap.abs().max()), "mean_signed_gap": float(gap.mean()),
              "mean_logp": float(sampled[mask[:, :n]].mean())}
    print(json.dumps(result, indent=1))
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
