"""groundkit's decoding engine against llguidance and xgrammar: same grammar, same token streams, one run.

Per step "mask compute + apply + advance" for a whole batch (1, 16, 64) with the Qwen2
vocabulary (151,936 logits) and a 262,144-token vocabulary (Qwen2 extended *synthetically*,
see ``decoding_peers.extend_vocabulary``); cold table build and warm (disk cache) load; the
per-request cost of per-image bounds and x1<x2 (groundkit: bounds are tensors, no compile;
the peers: one grammar compile per distinct image, and no ordering at all); and, with
``--rollouts N``, the decoding guarantee on N random-logit rollouts.

    python benchmarks/decoding.py [--batches 1,16,64] [--steps 96] [--rollouts N] [--out benchmarks/results/decoding.json]
    python benchmarks/decoding.py --guarantee-only --rollouts 10000   # -> results/decoding_guarantee.json
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
from decoding_peers import (  # noqa: E402
    HEADER,
    Phases,
    Result,
    _row,
    extend_vocabulary,
    peer_step_factory,
    peers,
    qwen2_tokenizer,
    time_engine,
    token_streams,
    traces,
)

import groundkit as gk  # noqa: E402
from groundkit.decoding import processor as engine  # noqa: E402
from groundkit.decoding.tables import compile_tables, get_tables, grammar_literals  # noqa: E402
from groundkit.decoding.vocab import read_vocabulary, tokenizer_fingerprint  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "decoding.json"
FLOOR = "fill-floor (not an engine)"


def groundkit_step_factory(tok: Any, grammar: gk.ComposedGrammar) -> Callable:
    tables = engine.compile_constraint(tok, grammar)

    def make(rows: list[list[int]], vocab: int) -> tuple[Callable[[int], None], Phases]:
        sizes = [gk.ImageSize(640 + 10 * i, 480) for i in range(len(rows))]
        proc = engine.GroundedLogitsProcessor(tables, grammar, sizes, max_new_tokens=4096, guard=False)
        constraint = proc.new_constraint(len(rows), torch.device("cpu"))
        ids = torch.tensor([r[: min(len(x) for x in rows)] for r in rows])
        logits = torch.zeros(len(rows), vocab)
        phases = Phases()

        def step(k: int) -> None:
            t0 = time.perf_counter()
            constraint.mask_(logits)  # compute and apply are one pass of gathers/scatters
            t1 = time.perf_counter()
            constraint.advance(ids[:, k])
            t2 = time.perf_counter()
            if k >= 2:
                phases.mask, phases.advance = phases.mask + t1 - t0, phases.advance + t2 - t1
                phases.steps += 1

        return step, phases

    return make


def fill_floor_factory(tok: Any, grammar: gk.ComposedGrammar) -> Callable:
    """Not an engine: the time of writing -inf over the rows that allow only a few tokens (a
    tag, a number), which every logits processor must do whatever its mask costs to compute
    (llguidance's apply writes every row). A step of any engine costs at least this, so
    ``best peer / floor`` is the largest speed-up this machine's memory bandwidth allows."""
    from groundkit.decoding.host import fill_rows, state_columns

    tables = engine.compile_constraint(tok, grammar)

    def make(rows: list[list[int]], vocab: int) -> tuple[Callable[[int], float], Phases]:
        proc = engine.GroundedLogitsProcessor(tables, grammar, [gk.ImageSize(640, 480)] * len(rows), max_new_tokens=4096, guard=False)
        constraint = proc.new_constraint(len(rows), torch.device("cpu"))
        h = constraint.dt.host_lists
        ids = torch.tensor([r[: min(len(x) for x in rows)] for r in rows])
        logits = torch.zeros(len(rows), vocab)
        phases = Phases()

        def step(k: int) -> float:
            remaining = constraint.budget - constraint.steps_taken
            narrow = [row for row, s in enumerate(constraint.state.tolist()) if not state_columns(h, s, max(h.dist_l[s] - 1, remaining - 1))[0]]
            t0 = time.perf_counter()
            fill_rows(logits, narrow)
            spent = time.perf_counter() - t0
            constraint.advance(ids[:, k])
            if k >= 2:
                phases.apply += spent
                phases.steps += 1
            return spent

        return step, phases

    return make


def build_times(tok: Any, grammar: gk.ComposedGrammar, cache: Path) -> dict[str, float]:
    """Cold: vocabulary bytes + compile; warm: a new process's load of the cached tables."""
    import os

    os.environ["GROUNDKIT_CACHE_DIR"] = str(cache)
    t = time.perf_counter()
    fp = tokenizer_fingerprint(tok)
    t_fp = time.perf_counter() - t
    t = time.perf_counter()
    vocab = read_vocabulary(tok, grammar_literals(grammar))
    t_vocab = time.perf_counter() - t
    t = time.perf_counter()
    compile_tables(grammar, vocab)
    t_compile = time.perf_counter() - t
    get_tables(grammar, vocab)  # writes the cache
    t = time.perf_counter()
    get_tables(grammar, vocab)  # reads it
    t_load = time.perf_counter() - t
    return {"tokenizer_fingerprint_s": t_fp, "vocabulary_bytes_s": t_vocab, "compile_s": t_compile,
            "cold_total_s": t_vocab + t_compile, "warm_load_s": t_load, "fingerprint_chars": len(fp)}


def per_request_costs(tok: Any, grammar_name: str, n_images: int = 16) -> dict[str, Any]:
    """A batch of 16 distinct images in the abs-original frame: what each engine pays before step 1."""
    grammar = gk.get_grammar(grammar_name, "abs-original")
    sizes = [gk.ImageSize(300 + 37 * i, 200 + 53 * i) for i in range(n_images)]
    engine.compile_constraint(tok, grammar)
    t = time.perf_counter()
    proc = engine.make_processor(tok, grammar, sizes, max_new_tokens=256)
    proc(torch.zeros((n_images, 1), dtype=torch.long), torch.zeros((n_images, len(tok))))
    out: dict[str, Any] = {"groundkit_s": time.perf_counter() - t, "groundkit_enforces": "per-row per-axis bounds, x1<x2, budget"}
    try:
        from groundkit_plugins.decoding_peers import LLGuidancePeer, XGrammarPeer

        for name, cls in (("llguidance", LLGuidancePeer), ("xgrammar", XGrammarPeer)):
            peer = cls(tok, len(tok), grammar)
            t = time.perf_counter()
            for s in sizes:  # one grammar per image: the export bakes the bound in
                peer.compile(grammar, image_size=s)
            out[f"{name}_s"] = time.perf_counter() - t
        out["peers_enforce"] = "one bound per row (max of the axes), no x1<x2, no budget"
    except ImportError as exc:
        out["peers"] = f"not installed: {exc}"
    return out


def write_guarantee(path: Path, requested: int, stats: dict[str, Any], complete: bool, **extra: Any) -> dict[str, Any]:
    report = {"rollouts_requested": requested, **stats, "complete": complete, "vocab": "Qwen2 (151,665 tokens)", **extra}
    path.write_text(json.dumps(report, indent=2) + "\n")
    return report


def guarantee(tok: Any, rollouts: int, checkpoint: Path | None = None) -> dict[str, Any]:
    """``rollouts`` random-logit rollouts over every dialect and frame; counts of violations.
    With ``checkpoint``, the counts so far are rewritten there after every batch."""
    from groundkit.decoding.check import check_completions, grammar_bias, sample_rollouts
    from groundkit.decoding.vocab import eos_token_ids

    frames = [None, "percent-100", "unit", "abs-original", "abs-resized"]
    combos = [(d, f) for d in gk.get_registry().dialects.names() for f in frames if not (d == "molmo" and f and f.startswith("abs"))]
    rows, steps, done, stats = 64, 96, 0, {"rollouts": 0, "finished": 0, "groundings": 0, "violations": 0}
    eos = eos_token_ids(tok)
    seed = 0
    while done < rollouts:
        for dialect, frame in combos:
            grammar = gk.get_grammar(dialect, frame)
            g = torch.Generator().manual_seed(seed)
            sizes = [gk.ImageSize(int(w), int(h)) for w, h in torch.randint(28, 3000, (rows, 2), generator=g).tolist()]
            proc = engine.make_processor(tok, grammar, sizes, max_new_tokens=steps)
            ids = sample_rollouts(proc, len(tok) + 64, rows, steps, eos, bias=grammar_bias(tok, grammar), generator=g,
                                  temperature=[1.0, 0.7, 1.5][seed % 3], top_k=[0, 50, 1][seed % 3], warpers_first=seed % 2 == 1)
            report = check_completions(tok, grammar, ids, sizes, eos)
            stats["rollouts"] += rows
            stats["finished"] += sum(report.finished)
            stats["groundings"] += report.groundings
            stats["violations"] += len(report.violations)
            done += rows
            seed += 1
            print(f"guarantee: {done}/{rollouts} rollouts, {stats['violations']} violations", end="\r", file=sys.stderr, flush=True)
            if checkpoint is not None:
                write_guarantee(checkpoint, rollouts, stats, complete=done >= rollouts)
            if done >= rollouts:
                break
    return stats


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", default="1,16,64")
    ap.add_argument("--steps", type=int, default=64)
    ap.add_argument("--dialect", default="groundkit")
    ap.add_argument("--rollouts", type=int, default=0)
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--guarantee-only", action="store_true",
                    help="only the --rollouts check, written to results/decoding_guarantee.json")
    args = ap.parse_args(argv)
    if args.guarantee_only:
        out = RESULTS.with_name("decoding_guarantee.json") if args.out == RESULTS else args.out
        t = time.perf_counter()
        stats = guarantee(qwen2_tokenizer(), args.rollouts, out)
        report = write_guarantee(out, args.rollouts, stats, complete=True, seconds=round(time.perf_counter() - t, 1))
        print("\nguarantee:", json.dumps(report), f"\nwrote {out}")
        return
    batches = [int(b) for b in args.batches.split(",")]
    grammar = gk.get_grammar(args.dialect)
    base = qwen2_tokenizer()
    report: dict[str, Any] = {
        "grammar": {"dialect": args.dialect, "frame": grammar.frame.name, "types": list(grammar.type_names)},
        "vocab_note": "151936 = Qwen2's logits (151,665 tokens); 262144 = Qwen2 extended with synthetic tokens",
        "machine": {"python": platform.python_version(), "torch": torch.__version__, "threads": torch.get_num_threads(),
                    "device": "cpu"},
    }
    import tempfile

    with tempfile.TemporaryDirectory() as cache:
        report["build"] = {"151936": build_times(base, grammar, Path(cache))}
    print("table build (Qwen2):", json.dumps({k: round(v, 4) for k, v in report["build"]["151936"].items()}))
    print(HEADER)
    results: list[Result] = []
    for vocab, tok in [(151_936, base), (262_144, extend_vocabulary(base, 262_144))]:
        streams = token_streams(tok, traces(grammar, 16))
        engines = {"groundkit": groundkit_step_factory(tok, grammar), FLOOR: fill_floor_factory(tok, grammar)}
        engines.update({name: peer_step_factory(p, c) for name, (p, c, _cold) in peers(tok, vocab, grammar).items()})
        for b in batches:
            for name, make in engines.items():
                results.append(time_engine(name, make, streams, b, vocab, args.steps))
                print(_row(results[-1]), flush=True)
    report["results"] = [r.__dict__ for r in results]
    ratios = {}
    for vocab in (151_936, 262_144):
        for b in batches:
            rows = {r.engine: r.step_us_p50 for r in results if r.vocab == vocab and r.batch == b}
            rivals = {k: v for k, v in rows.items() if k not in ("groundkit", FLOOR) and "default" not in k}
            if "groundkit" in rows and rivals:
                best = min(rivals, key=rivals.get)
                ratios[f"{vocab}/b{b}"] = {"best_peer": best, "speedup_vs_best_peer": rivals[best] / rows["groundkit"],
                                           "best_peer_vs_fill_floor": rivals[best] / rows[FLOOR]}
    report["speedup_p50"] = ratios
    print("speedup (p50 step, best peer / groundkit):", json.dumps({k: round(v["speedup_vs_best_peer"], 2) for k, v in ratios.items()}))
    print("largest possible (best peer / fill floor):", json.dumps({k: round(v["best_peer_vs_fill_floor"], 2) for k, v in ratios.items()}))
    report["per_request"] = per_request_costs(base, args.dialect)
    print("per-request cost, 16 distinct images:", json.dumps(report["per_request"]))
    if args.rollouts:
        report["guarantee"] = guarantee(base, args.rollouts)
        print("guarantee:", json.dumps(report["guarantee"]))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
