"""Evaluation: benchmarks + completions (or a model) -> scores per benchmark, task and grounding type,
``results.json`` and an HTML report. Resumable; bad records are reported by id."""

from groundkit.eval.generate import generate_completions
from groundkit.eval.report import write_report
from groundkit.eval.runner import METRICS, EvalConfig, EvalRun, evaluate, load_completions
from groundkit.eval.summary import summarize, summary_table

__all__ = [
    "METRICS", "EvalConfig", "EvalRun", "evaluate", "generate_completions",
    "load_completions", "summarize", "summary_table", "write_report",
]
