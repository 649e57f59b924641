"""The experiment interface: a whole study run by ``groundkit experiment NAME --out DIR``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from groundkit.errors import GroundkitError

#: ``progress(stage, done, total)``: a stage's progress (``total`` 0 when unknown).
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class ExperimentOptions:
    """How to run an experiment.

    ``scale`` picks the experiment's preset (``cpu``: minutes on a laptop-class CPU, no GPU;
    ``gpu``: a real backbone with LoRA on one GPU; ``smoke``: a few steps of everything, for
    tests); ``model`` is a local checkpoint or ``tiny:<backbone>`` (None: the preset's own);
    ``fresh`` discards finished stages instead of resuming them.
    """

    scale: str = "cpu"
    model: str | None = None
    seed: int = 0
    fresh: bool = False
    device: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or self.seed < 0:
            raise GroundkitError(f"experiment seed must be a non-negative integer, got {self.seed!r}")


class Experiment:
    """Base class of experiments (register instances with ``register_experiments``).

    ``run`` builds everything under ``out`` from groundkit's public calls, resumes finished
    stages, and returns the results it also writes to ``out/results.json``.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    scales: ClassVar[tuple[str, ...]] = ("cpu", "gpu", "smoke")

    def run(self, out: Path, options: ExperimentOptions, progress: Progress | None = None) -> dict[str, Any]:
        raise NotImplementedError(f"experiment {self.name!r} does not implement run()")
