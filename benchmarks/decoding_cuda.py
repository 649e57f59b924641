"""The decoding engine's tensor step on a GPU: host syncs, CUDA-graph capture, cost next to a decode step.

    python benchmarks/decoding_cuda.py [--batch 64] [--steps 48] [--model qwen2.5-3b] [--out benchmarks/results/decoding_cuda.json]
    python benchmarks/decoding_cuda.py --device cpu --batch 4 --steps 8 --model tiny   # smoke run of the same code

On CUDA, for the Qwen2 vocabulary and the token streams of valid traces:

1. **Syncs**: every step (mask + advance) runs under ``torch.cuda.set_sync_debug_mode("error")``,
   so a device-to-host copy or ``.item()`` anywhere in it raises.
2. **CUDA graph**: one step (mask a static scores buffer, advance by a static tokens buffer)
   is captured in a ``torch.cuda.CUDAGraph`` and replayed along the streams; every replay's
   mask and states are compared with the eager step's.
3. **Time** (CUDA events, p50 over steps): the eager step, the graph replay, llguidance (mask
   filled on the CPU, copied, applied with its kernel on the GPU; when installed), and one
   decode step (one token through a language model of the given size with random weights
   and a KV cache) at the same batch; the ratios step / decode step are the overhead.

``--device cpu`` runs the same code without the sync check and the graph (they need CUDA).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
from decoding_peers import qwen2_tokenizer, token_streams, traces  # noqa: E402

import groundkit as gk  # noqa: E402
from groundkit.decoding import processor as engine  # noqa: E402
from groundkit.decoding.runtime import BatchConstraint  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "decoding_cuda.json"
MODELS = {  # Qwen2-family language models (the text half of the VLM backbones)
    "qwen2.5-3b": {"hidden_size": 2048, "intermediate_size": 11008, "num_hidden_layers": 36, "num_attention_heads": 16,
                   "num_key_value_heads": 2},
    "qwen2.5-7b": {"hidden_size": 3584, "intermediate_size": 18944, "num_hidden_layers": 28, "num_attention_heads": 28,
                   "num_key_value_heads": 4},
    "tiny": {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2},
}


class Clock:
    """Per-step timings: CUDA events on a GPU (no sync inside the loop), perf_counter on the CPU."""

    def __init__(self, device: torch.device):
        self.cuda = device.type == "cuda"
        self.marks: list[tuple[Any, Any]] = []

    def start(self) -> Any:
        if self.cuda:
            event = torch.cuda.Event(enable_timing=True)
            event.record()
            return event
        return time.perf_counter()

    def stop(self, started: Any) -> None:
        self.marks.append((started, self.start()))

    def p50_us(self, skip: int = 2) -> float:
        if self.cuda:
            torch.cuda.synchronize()
            spans = [1e3 * a.elapsed_time(b) for a, b in self.marks[skip:]]
        else:
            spans = [1e6 * (b - a) for a, b in self.marks[skip:]]
        return statistics.median(spans)


def constraint(tables: Any, grammar: gk.ComposedGrammar, batch: int, device: torch.device) -> BatchConstraint:
    sizes = [gk.ImageSize(640 + 10 * i, 480) for i in range(batch)]
    c = engine.GroundedLogitsProcessor(tables, grammar, sizes, max_new_tokens=4096, guard=False).new_constraint(batch, device)
    c.use_host = False  # the tensor step everywhere (on the CPU too, for the smoke run)
    return c


def step(c: BatchConstraint, scores: torch.Tensor, tokens: torch.Tensor) -> None:
    c.mask_tensor_(scores)
    c.advance(tokens)


def run_engine(tok: Any, grammar: gk.ComposedGrammar, ids: torch.Tensor, logits: torch.Tensor, device: torch.device) -> dict[str, Any]:
    tables = engine.compile_constraint(tok, grammar)
    batch, steps = ids.shape
    out: dict[str, Any] = {}
    eager = constraint(tables, grammar, batch, device)
    masks, states, clock = [], [], Clock(device)
    for k in range(steps):
        scores = logits[k].clone()
        if device.type == "cuda" and k == 2:
            torch.cuda.set_sync_debug_mode("error")  # from here on any host sync raises
        started = clock.start()
        step(eager, scores, ids[:, k])
        clock.stop(started)
        masks.append(torch.isneginf(scores))
        states.append(eager.state.clone())
    if device.type == "cuda":
        torch.cuda.set_sync_debug_mode("default")
        out["host_syncs_per_step"] = 0  # set_sync_debug_mode("error") would have raised
    out["eager_step_us_p50"] = clock.p50_us()
    if device.type == "cuda":
        out.update(run_graph(tables, grammar, ids, logits, masks, states, device))
    return out


def run_graph(tables: Any, grammar: gk.ComposedGrammar, ids: torch.Tensor, logits: torch.Tensor, masks: list[torch.Tensor],
              states: list[torch.Tensor], device: torch.device) -> dict[str, Any]:
    batch, steps = ids.shape
    warm = constraint(tables, grammar, batch, device)
    scores, tokens = logits[0].clone(), ids[:, 0].clone()
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):  # warm-up outside the capture (library handles, allocator)
            step(warm, scores.clone(), tokens)
    torch.cuda.current_stream().wait_stream(side)
    captured = constraint(tables, grammar, batch, device)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):  # recorded, not run: ``captured`` is still at the start state
        step(captured, scores, tokens)
    mismatches = torch.zeros((), dtype=torch.int64, device=device)
    clock = Clock(device)
    for k in range(steps):
        scores.copy_(logits[k])
        tokens.copy_(ids[:, k])
        started = clock.start()
        graph.replay()
        clock.stop(started)
        mismatches += (torch.isneginf(scores) != masks[k]).sum() + (captured.state != states[k]).sum()
    return {"graph_captured": True, "graph_mismatches_vs_eager": int(mismatches), "graph_step_us_p50": clock.p50_us()}


def run_llguidance(tok: Any, grammar: gk.ComposedGrammar, ids: torch.Tensor, logits: torch.Tensor, device: torch.device) -> dict[str, Any]:
    try:
        from groundkit_plugins.decoding_peers import LLGuidancePeer
    except ImportError as exc:
        return {"llguidance": f"not installed: {exc}"}
    peer = LLGuidancePeer(tok, logits.shape[-1], grammar)
    compiled = peer.compile(grammar)
    batch, steps = ids.shape
    matchers = [peer.matcher(compiled) for _ in range(batch)]
    bitmask = peer.allocate(batch)
    bitmask = bitmask.pin_memory() if device.type == "cuda" else bitmask
    rows = ids.tolist()
    spans = []
    for k in range(steps):
        scores = logits[k].clone()
        if device.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        peer.fill(matchers, bitmask)
        peer.apply(scores, bitmask.to(device, non_blocking=True))
        if device.type == "cuda":
            torch.cuda.synchronize()
        spans.append(1e6 * (time.perf_counter() - t))
        for m, row in zip(matchers, rows):
            peer.advance(m, row[k])
    return {"llguidance_step_us_p50": statistics.median(spans[2:])}


def decode_step_us(model_name: str, batch: int, context: int, device: torch.device, steps: int = 12) -> float:
    """p50 of one decode step (one token per row, KV cache of ``context`` tokens), random weights."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    config = Qwen2Config(vocab_size=151_936, max_position_embeddings=32_768, tie_word_embeddings=True, **MODELS[model_name])
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    with torch.device(device):
        model = Qwen2ForCausalLM(config).to(dtype).eval()
    g = torch.Generator(device=device).manual_seed(0)
    ids = torch.randint(0, 150_000, (batch, context), device=device, generator=g)
    clock = Clock(device)
    with torch.inference_mode():
        out = model(input_ids=ids, use_cache=True, logits_to_keep=1)
        cache, nxt = out.cache, out.logits[:, -1].argmax(-1, keepdim=True)
        for _ in range(steps):
            started = clock.start()
            out = model(input_ids=nxt, cache=cache, use_cache=True)
            clock.stop(started)
            cache, nxt = out.cache, out.logits[:, -1].argmax(-1, keepdim=True)
    return clock.p50_us()


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=48)
    ap.add_argument("--model", choices=sorted(MODELS), default="qwen2.5-3b")
    ap.add_argument("--context", type=int, default=1024, help="KV-cache length for the decode step")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--no-peers", action="store_true", help="leave llguidance out")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("no CUDA device here: run on a GPU machine, or pass --device cpu for a smoke run")
    tok = qwen2_tokenizer()
    grammar = gk.get_grammar("groundkit")
    streams = token_streams(tok, traces(grammar, 16))
    steps = min(args.steps, min(len(s) for s in streams))
    ids = torch.tensor([streams[i % len(streams)][:steps] for i in range(args.batch)], device=device)
    g = torch.Generator(device=device).manual_seed(0)
    logits = torch.randn((steps, args.batch, 151_936), device=device, generator=g)
    report: dict[str, Any] = {"device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu", "torch": torch.__version__,
                              "batch": args.batch, "steps": steps, "vocab": 151_936, "dialect": "groundkit"}
    report.update(run_engine(tok, grammar, ids, logits, device))
    if not args.no_peers:
        report.update(run_llguidance(tok, grammar, ids, logits, device))
    report["model"], report["context"] = args.model, args.context
    report["decode_step_us_p50"] = decode_step_us(args.model, args.batch, args.context, device)
    for key in ("eager_step_us_p50", "graph_step_us_p50", "llguidance_step_us_p50"):
        if key in report:
            report[key.replace("_us_p50", "_over_decode_step")] = report[key] / report["decode_step_us_p50"]
    print(json.dumps(report, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    return report


if __name__ == "__main__":
    main()
