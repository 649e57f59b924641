"""Smoke run of benchmarks/decoding_cuda.py on the CPU: the code a GPU session runs (the sync
check and the CUDA graph need CUDA and are left out here)."""

from __future__ import annotations

import importlib.util
import json
import sys

from conftest import REPO


def test_cuda_benchmark_runs_its_step_and_decode_timing_on_cpu(qwen2_tokenizer_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("GROUNDKIT_QWEN2_TOKENIZER", str(qwen2_tokenizer_dir))
    spec = importlib.util.spec_from_file_location("bench_decoding_cuda", REPO / "benchmarks" / "decoding_cuda.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    out = tmp_path / "cuda.json"
    report = module.main(["--device", "cpu", "--batch", "3", "--steps", "6", "--model", "tiny", "--context", "8", "--no-peers",
                          "--out", str(out)])
    assert json.loads(out.read_text()) == report
    assert report["steps"] == 6 and report["eager_step_us_p50"] > 0 and report["decode_step_us_p50"] > 0
    assert report["eager_step_over_decode_step"] > 0 and "graph_step_us_p50" not in report  # CUDA only
