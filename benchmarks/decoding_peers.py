"""Per-step cost of grammar-constrained decoding in llguidance and xgrammar on groundkit's grammar exports.

For one grammar and the token streams of valid traces, a step is "mask compute + apply +
advance" for a whole batch (1, 16, 64 rows), timed per phase, with the real Qwen2 vocabulary
(151,936 logits) and a 262,144-token vocabulary made by extending Qwen2's *synthetically*
(extra tokens are variants of real ones, never produced by the tokenizer but present in the
vocabulary every mask must cover). Also the cold compile time per grammar.

Another engine joins as one more column: write ``make_step(streams, vocab_size)`` returning
``step(k)`` plus its phase timers, and call :func:`time_engine` (see :func:`peer_step_factory`).

    python benchmarks/decoding_peers.py [--batches 1,16,64] [--steps 96] [--out benchmarks/results/decoding_peers.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import groundkit as gk

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "decoding_peers.json"
WORDS = "the mug on the left shelf is red and the plate near it looks empty so I count again".split()


@dataclass
class Phases:
    """Seconds spent per phase, accumulated over timed steps."""

    mask: float = 0.0
    apply: float = 0.0
    advance: float = 0.0
    steps: int = 0
    per_step: list[float] = field(default_factory=list)


@dataclass
class Result:
    engine: str
    vocab: int
    batch: int
    steps: int
    step_us_mean: float
    step_us_p50: float
    step_us_p90: float
    mask_us: float
    apply_us: float
    advance_us: float
    setup_s: float


# --- inputs ------------------------------------------------------------------------------------


def qwen2_tokenizer(directory: str | Path | None = None) -> Any:
    """The real Qwen2 byte-level BPE (a ``PreTrainedTokenizerFast``) from vocab.json + merges.txt."""
    tok = gk.qwen_tokenizer(directory)
    if len(tok) < 150_000:
        raise SystemExit("the real Qwen2 vocabulary was not found (../shared/tokenizers/qwen2 or $GROUNDKIT_QWEN2_TOKENIZER)")
    return tok


def extend_vocabulary(tok: Any, size: int, seed: int = 0) -> Any:
    """A copy of ``tok`` whose BPE vocabulary is padded to ``size`` with synthetic tokens.

    Each extra token is a real ASCII token plus one or two printable ASCII characters (valid
    UTF-8, like most of a real vocabulary); with no merges the tokenizer never produces them,
    so encodings are unchanged, but every mask must cover them.
    """
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    spec = json.loads(tok.backend_tokenizer.to_str())
    vocab: dict[str, int] = spec["model"]["vocab"]
    alphabet = [chr(c) for c in range(33, 127)] + ["Ġ"]  # byte-level BPE writes a space as "Ġ"
    rng = random.Random(seed)
    pieces = [p for p in vocab if all(ch in alphabet for ch in p)]
    next_id = len(tok)
    while next_id < size:
        cand = rng.choice(pieces) + "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 2)))
        if cand not in vocab:
            vocab[cand] = next_id
            next_id += 1
    big = PreTrainedTokenizerFast(tokenizer_object=Tokenizer.from_str(json.dumps(spec)), eos_token=tok.eos_token, pad_token=tok.pad_token)
    return big


def traces(grammar: gk.ComposedGrammar, n: int, seed: int = 0) -> list[str]:
    """Valid traces of ``grammar`` (text interleaved with groundings of every enabled type)."""
    rng = random.Random(seed)
    parser = gk.TraceParser(grammar)
    out = []
    while len(out) < n:
        text = _trace(grammar, rng)
        try:
            parser.parse(text)
        except gk.ParseError:  # rounding made two ordered values equal (a degenerate box): draw again
            continue
        out.append(text)
    return out


def _trace(grammar: gk.ComposedGrammar, rng: random.Random) -> str:
    frame = grammar.frame
    hi = int(frame.extent("x"))
    parts = ["<think>"]
    for _ in range(rng.randint(2, 4)):
        parts.append(" ".join(rng.choices(WORDS, k=rng.randint(4, 14))) + " ")
        t = rng.choice(grammar.type_names)
        gtype = grammar.grounding_type(t)
        n_values = gtype.arity or 2 * gtype.min_vertices
        vals = sorted(rng.uniform(0, hi) for _ in range(n_values))
        vals = [vals[i // 2 + (n_values // 2) * (i % 2)] for i in range(n_values)] if gtype.ordering else vals
        written = [frame.format_value(round(v, frame.decimals)) for v in vals]
        syntax = grammar.syntax(t)
        parts.append(syntax.write(rng.choice(WORDS) if syntax.writes_label else None, written))
    parts.append(f" so the answer follows.</think><answer>{rng.randint(0, 9)}</answer>")
    return "".join(parts)


def token_streams(tok: Any, texts: Sequence[str]) -> list[list[int]]:
    return [tok(t, add_special_tokens=False).input_ids + [tok.eos_token_id] for t in texts]


# --- timing ------------------------------------------------------------------------------------

StepFactory = Callable[[list[list[int]], int], tuple[Callable[[int], float | None], Phases]]


def time_engine(
    name: str, make_step: StepFactory, streams: list[list[int]], batch: int, vocab: int, steps: int, warmup: int = 2,
    max_seconds: float = 30.0,
) -> Result:
    """Time up to ``steps`` batched steps of an engine (``make_step(rows, vocab) -> (step, phases)``).

    ``step(k)`` runs step ``k`` for every row and adds its phase times to ``phases`` from step
    ``warmup`` on; if it returns seconds, those are the step's time instead of its wall time.
    A slow engine stops after ``max_seconds`` (at least ``warmup + 3`` steps).
    """
    rows = [streams[i % len(streams)] for i in range(batch)]
    steps = min(steps, min(len(r) for r in rows))
    t0 = time.perf_counter()
    step, phases = make_step(rows, vocab)
    setup = time.perf_counter() - t0
    start = time.perf_counter()
    for k in range(steps):
        t = time.perf_counter()
        timed_part = step(k)  # a step may time only part of itself (see decoding.fill_floor_factory)
        if k >= warmup:
            phases.per_step.append(time.perf_counter() - t if timed_part is None else timed_part)
        if k >= warmup + 3 and time.perf_counter() - start > max_seconds:
            break
    timed = phases.per_step
    scale = 1e6 / max(phases.steps, 1)
    q = statistics.quantiles(timed, n=10) if len(timed) >= 2 else [timed[0]] * 9
    return Result(
        name, vocab, batch, len(timed), 1e6 * statistics.fmean(timed), 1e6 * statistics.median(timed), 1e6 * q[8],
        phases.mask * scale, phases.apply * scale, phases.advance * scale, setup,
    )


def peer_step_factory(peer: Any, compiled: Any) -> StepFactory:
    """``make_step`` for a :class:`groundkit_plugins.decoding_peers.Peer`: fill masks, apply them, advance each row."""
    import torch

    def make(rows: list[list[int]], vocab: int) -> tuple[Callable[[int], None], Phases]:
        matchers = [peer.matcher(compiled) for _ in rows]
        bitmask = peer.allocate(len(rows))
        logits = torch.zeros(len(rows), vocab)
        phases = Phases()

        def step(k: int) -> None:
            t0 = time.perf_counter()
            peer.fill(matchers, bitmask)
            t1 = time.perf_counter()
            peer.apply(logits, bitmask)
            t2 = time.perf_counter()
            for m, row in zip(matchers, rows):
                if not peer.advance(m, row[k]):
                    raise RuntimeError(f"{peer.name} rejected token {row[k]} at step {k}")
            t3 = time.perf_counter()
            if k >= 2:
                phases.mask, phases.apply, phases.advance = phases.mask + t1 - t0, phases.apply + t2 - t1, phases.advance + t3 - t2
                phases.steps += 1

        return step, phases

    return make


def peers(tok: Any, vocab: int, grammar: gk.ComposedGrammar) -> dict[str, tuple[Any, Any, float]]:
    """Engine name -> (peer, compiled grammar, cold compile seconds); peers not installed are left out."""
    import importlib.util

    from groundkit_plugins.decoding_peers import LLGuidancePeer, XGrammarPeer

    out = {}
    candidates = [("llguidance", lambda: LLGuidancePeer(tok, vocab, grammar)), ("llguidance-default-slices", lambda: LLGuidancePeer(tok, vocab)),
                  ("xgrammar", lambda: XGrammarPeer(tok, vocab, grammar))]
    for name, build in candidates:
        if importlib.util.find_spec(name.split("-")[0]) is None:
            print(f"[skip] {name}: not installed", file=sys.stderr)
            continue
        peer = build()
        t = time.perf_counter()
        compiled = peer.compile(grammar)
        if name.startswith("llguidance"):
            peer.matcher(compiled).compute_bitmask()  # include matcher creation and the first mask
        out[name] = (peer, compiled, time.perf_counter() - t)
    return out


def run(batches: Sequence[int], steps: int, dialect: str = "groundkit", tokenizer_dir: str | None = None) -> dict[str, Any]:
    grammar = gk.get_grammar(dialect)
    base = qwen2_tokenizer(tokenizer_dir)
    results: list[Result] = []
    compile_s: dict[str, dict[str, float]] = {}
    for vocab, tok in [(151_936, base), (262_144, extend_vocabulary(base, 262_144))]:
        streams = token_streams(tok, traces(grammar, 16))
        for name, (peer, compiled, cold) in peers(tok, vocab, grammar).items():
            compile_s.setdefault(name, {})[str(vocab)] = cold
            for b in batches:
                results.append(time_engine(name, peer_step_factory(peer, compiled), streams, b, vocab, steps))
                print(_row(results[-1]), flush=True)
    return {
        "grammar": {"dialect": dialect, "frame": grammar.frame.name, "types": list(grammar.type_names)},
        "vocab_note": "151936 = Qwen2's logits (151,665 tokens); 262144 = Qwen2 extended with synthetic tokens",
        "machine": {"python": platform.python_version(), "cpu": platform.processor() or platform.machine()},
        "cold_compile_s": compile_s,
        "results": [asdict(r) for r in results],
    }


def _row(r: Result) -> str:
    return (f"{r.engine:26s} {r.vocab:>7d} {r.batch:>5d} {r.step_us_mean:>10.0f} {r.step_us_p50:>10.0f} {r.step_us_p90:>10.0f} "
            f"{r.mask_us:>10.0f} {r.apply_us:>10.0f} {r.advance_us:>10.0f}")


HEADER = f"{'engine':26s} {'vocab':>7s} {'batch':>5s} {'step us':>10s} {'p50':>10s} {'p90':>10s} {'mask':>10s} {'apply':>10s} {'advance':>10s}"


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", default="1,16,64")
    ap.add_argument("--steps", type=int, default=96)
    ap.add_argument("--dialect", default="groundkit")
    ap.add_argument("--tokenizer-dir", default=None)
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    print(HEADER)
    report = run([int(b) for b in args.batches.split(",")], args.steps, args.dialect, args.tokenizer_dir)
    print("cold compile (s):", json.dumps(report["cold_compile_s"]))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
