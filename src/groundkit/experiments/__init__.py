"""Experiments: whole studies built from groundkit's own public calls (scenes -> synth -> train ->
eval), run resumably stage by stage. ``counting`` is built in; plugins add more
(``register_experiments``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from groundkit.interfaces.experiment import Experiment, ExperimentOptions, Progress


def run_experiment(name: str, out: str | Path, options: ExperimentOptions | None = None,
                   progress: Progress | None = None) -> dict[str, Any]:
    """Run the registered experiment ``name`` under ``out``; returns its results (also in ``out/results.json``).

    Example::

        results = run_experiment("counting", "runs/counting", ExperimentOptions(scale="cpu"))
        results["arms"]["grounded"]["accuracy"]
    """
    from groundkit.errors import GroundkitError
    from groundkit.registry import get_registry

    experiment = get_registry().experiment(name)
    options = options or ExperimentOptions()
    if options.scale not in experiment.scales:
        raise GroundkitError(f"experiment {name!r} has no scale {options.scale!r}; choose one of {', '.join(experiment.scales)}")
    return experiment.run(Path(out), options, progress)


__all__ = ["Experiment", "ExperimentOptions", "run_experiment"]
