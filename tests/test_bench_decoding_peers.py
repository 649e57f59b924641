"""Smoke test of the decoding-peers benchmark helpers (the benchmark itself is not part of the suite)."""

from __future__ import annotations

import importlib.util
import sys

from conftest import REPO

import groundkit as gk


def load_bench():
    spec = importlib.util.spec_from_file_location("bench_decoding_peers", REPO / "benchmarks" / "decoding_peers.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_traces_are_valid_and_time_engine_takes_any_step_factory():
    bench = load_bench()
    grammar = gk.get_grammar("groundkit")
    texts = bench.traces(grammar, 4)
    assert len(texts) == 4 and all(gk.TraceParser(grammar).parse(t) for t in texts)
    seen = []

    def make_step(rows, vocab):
        phases = bench.Phases()

        def step(k):
            seen.append(k)
            phases.steps += k >= 2

        return step, phases

    result = bench.time_engine("noop", make_step, [[1, 2, 3, 4, 5, 6, 7]], batch=2, vocab=10, steps=6)
    assert seen == list(range(6)) and result.steps == 4 and result.batch == 2 and result.step_us_mean >= 0
