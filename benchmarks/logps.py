"""Mask-consistent log-probs against the unconstrained path: peak memory and time (CPU).

Per configuration (B = 4 rows; T = 256 and 1,024 completion tokens; V = 151,936, the Qwen2
vocabulary, and 262,144, Qwen2 extended synthetically as in ``decoding_peers``), real
constrained completions (random-logit rollouts through the processor, default dialect) and:

* logits path, random float32 logits (B, T, V): ``trl`` = TRL's ``selective_log_softmax``
  plus ``entropy_from_logits`` without gradient (its cheapest setting); ``sparse`` =
  :func:`groundkit.training.masked_logps.sparse_masked_logps` (log-probs and entropies under
  the replayed masks, replay scan included); ``dense`` = today's reference
  :func:`groundkit.training.constrained.dense_masked_logps` (only at B=4, T=256, V=151,936:
  it needs ~6.5 copies of the logits);
* LM-head path, hidden states (B*T, 64) and a frozen head (V, 64), no logits kept:
  ``trl-head`` = TRL's fused ``ChunkedLogProbFunction`` (log-probs + entropy, its CPU
  fallback); ``sparse-head`` = :class:`groundkit.training.fused_masked.MaskedLMHead`.

Each run is forward + backward of ``sum(w * logps)`` in a fresh subprocess (one thread);
"extra peak" is the process's peak resident memory above what it held once the inputs
existed (``/proc/self/clear_refs`` resets the peak), so runs do not pollute each other.
Methods run interleaved ``--repeats`` times; the table keeps the fastest time (the machine
is shared) and the largest peak.

    python benchmarks/logps.py [--out benchmarks/results/logps.json] [--quick] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

RESULTS = Path(__file__).resolve().parent / "results" / "logps.json"
B, HIDDEN, QWEN2_LOGITS = 4, 64, 151_936
CONFIGS = [(256, 151_936), (1024, 151_936), (256, 262_144), (1024, 262_144)]
DENSE_ONLY_AT = (256, 151_936)


def tokenizer(vocab: int) -> Any:
    from decoding_peers import extend_vocabulary, qwen2_tokenizer

    tok = qwen2_tokenizer()
    return tok if vocab <= QWEN2_LOGITS else extend_vocabulary(tok, vocab)


def processor(tok: Any, steps: int) -> Any:
    import groundkit as gk
    from groundkit.decoding import make_processor

    return make_processor(tok, gk.get_grammar("groundkit"), [gk.ImageSize(640 + 40 * i, 480) for i in range(B)], steps)


def prepare(steps: int, vocab: int, path: Path) -> dict[str, Any]:
    """Constrained rollouts for one configuration, saved for the child processes."""
    import torch

    import groundkit as gk
    from groundkit.decoding.check import grammar_bias, sample_rollouts
    from groundkit.decoding.vocab import eos_token_ids

    tok = tokenizer(vocab)
    eos = eos_token_ids(tok)
    ids = sample_rollouts(processor(tok, steps), vocab, B, steps, eos, bias=grammar_bias(tok, gk.get_grammar("groundkit")),
                          temperature=1.3, generator=torch.Generator().manual_seed(steps))
    mask = torch.ones_like(ids)
    for row, line in enumerate(ids.tolist()):
        ends = [i for i, t in enumerate(line) if t in eos]
        if ends:
            mask[row, ends[0] + 1:] = 0
    torch.save({"ids": ids, "mask": mask}, path)
    return {"completion_tokens": int(mask.sum())}


def _status(field: str) -> int:
    """A /proc/self/status memory field, in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(field)


def child(method: str, steps: int, vocab: int, data: Path) -> dict[str, Any]:
    """One measured run (in its own process)."""
    import torch

    from groundkit.decoding.replay import replay_states
    from groundkit.training.constrained import dense_masked_logps
    from groundkit.training.fused_masked import MaskedCall, MaskedLMHead
    from groundkit.training.masked_logps import CHUNK_BYTES, sparse_masked_logps

    torch.manual_seed(0)
    saved = torch.load(data)
    ids, mask = saved["ids"], saved["mask"]
    proc = processor(tokenizer(vocab), steps)
    replay_states(proc, ids[:, :2], mask[:, :2])  # device tables and host lists: built once per training run
    w = torch.randn(ids.shape)
    head = method.endswith("head")
    if head:
        hidden = torch.randn(B * steps, HIDDEN, requires_grad=True)
        weight = torch.randn(vocab, HIDDEN) / HIDDEN**0.5 * 3
    else:
        logits = (torch.randn(B, steps, vocab) * 3).requires_grad_()
    scan = 0.0
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak
    base = _status("VmRSS")
    t0 = time.perf_counter()
    if method == "trl":
        from trl.trainer.utils import entropy_from_logits, selective_log_softmax

        logps = selective_log_softmax(logits, ids)
        with torch.no_grad():
            entropy_from_logits(logits)
    elif method == "sparse":
        s0 = time.perf_counter()
        replay = replay_states(proc, ids, mask)
        scan = time.perf_counter() - s0
        logps = sparse_masked_logps(logits, ids, mask, replay, compute_entropy=True).logps
    elif method == "dense":
        logps = dense_masked_logps(logits, ids, mask, proc, compute_entropy=True)[0]
    elif method == "trl-head":
        from trl.kernels import ChunkedLogProbFunction

        logps = ChunkedLogProbFunction.apply(hidden, weight, None, ids.reshape(-1), 1.0, 32768, None, 1.0,
                                             ("log_probs", "entropy"))[0].view(B, steps)
    elif method == "sparse-head":
        s0 = time.perf_counter()
        replay = replay_states(proc, ids, mask)
        scan = time.perf_counter() - s0
        labels = torch.cat([torch.full((B, 1), -100), ids.masked_fill(mask == 0, -100)], 1)
        call = MaskedCall(replay, labels, steps, CHUNK_BYTES)
        logps = MaskedLMHead.apply(hidden, weight, None, ids.reshape(-1), call, 1.0, None, 1.0, True)[0].view(B, steps)
    else:
        raise SystemExit(f"unknown method {method}")
    forward = time.perf_counter() - t0
    (logps * w * mask).sum().backward()
    total = time.perf_counter() - t0
    extra = _status("VmHWM") - base
    inputs = (B * steps * vocab * 4) if not head else 0
    return {"method": method, "T": steps, "V": vocab, "extra_peak_mb": round(extra / 2**20, 1),
            "inputs_mb": round(inputs / 2**20, 1), "forward_s": round(forward, 3), "total_s": round(total, 3),
            "scan_s": round(scan, 3)}


def run_child(method: str, steps: int, vocab: int, data: Path) -> dict[str, Any]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, __file__, "--child", method, str(steps), str(vocab), str(data)],
                         capture_output=True, text=True, env=env)
    if out.returncode:
        raise SystemExit(f"{method} T={steps} V={vocab} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--quick", action="store_true", help="only T=256, V=151,936")
    ap.add_argument("--repeats", type=int, default=3, help="runs per method (fastest time, largest peak)")
    ap.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        method, steps, vocab, data = args.child
        print(json.dumps(child(method, int(steps), int(vocab), Path(data))))
        return
    rows, ratios = [], []
    header = f"{'T':>5} {'V':>8} {'method':<12} {'extra peak MB':>14} {'logits MB':>10} {'fwd s':>7} {'fwd+bwd s':>10} {'scan s':>7}"
    print(header)
    with tempfile.TemporaryDirectory() as tmp:
        for steps, vocab in CONFIGS[:1] if args.quick else CONFIGS:
            data = Path(tmp) / f"{steps}_{vocab}.pt"
            info = prepare(steps, vocab, data)
            methods = ["trl", "sparse", "trl-head", "sparse-head"]
            runs: dict[str, list[dict[str, Any]]] = {m: [] for m in methods}
            for _ in range(args.repeats):  # interleaved, so a busy machine slows every method alike
                for method in methods:
                    runs[method].append(run_child(method, steps, vocab, data))
            if (steps, vocab) == DENSE_ONLY_AT:
                runs["dense"] = [run_child("dense", steps, vocab, data)]
            got = {}
            for method, rs in runs.items():
                best = min(rs, key=lambda r: r["total_s"])
                r = {**best, "extra_peak_mb": max(x["extra_peak_mb"] for x in rs), "repeats": len(rs),
                     "total_s_all": [x["total_s"] for x in rs], **info}
                got[method] = r
                rows.append(r)
                print(f"{steps:>5} {vocab:>8} {method:<12} {r['extra_peak_mb']:>14} {r['inputs_mb']:>10} {r['forward_s']:>7} "
                      f"{r['total_s']:>10} {r['scan_s']:>7}", flush=True)
            for ours, theirs in (("sparse", "trl"), ("sparse-head", "trl-head"), ("dense", "trl")):
                if ours in got:
                    a, b = got[ours], got[theirs]
                    ratios.append({"T": steps, "V": vocab, "ours": ours, "against": theirs,
                                   "peak_ratio": round(a["extra_peak_mb"] / max(b["extra_peak_mb"], 1e-9), 3),
                                   "time_ratio": round(a["total_s"] / b["total_s"], 3)})
    print(f"\n{'T':>5} {'V':>8} {'ours':<12} {'against':<9} {'peak x':>7} {'time x':>7}")
    for r in ratios:
        print(f"{r['T']:>5} {r['V']:>8} {r['ours']:<12} {r['against']:<9} {r['peak_ratio']:>7} {r['time_ratio']:>7}")
    import torch

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "what": "extra peak resident memory (above the inputs) and time of forward + backward of sum(w * logps), "
                "masked (ours) vs unconstrained TRL, CPU, one thread, B=4, real constrained completions",
        "goal": "peak_ratio <= 1.2, time_ratio <= 1.5",
        "machine": {"platform": platform.platform(), "torch": torch.__version__, "threads": 1},
        "runs": rows, "ratios": ratios,
    }, indent=1) + "\n")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
