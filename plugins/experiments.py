"""Built-in experiments: ``counting`` (direct vs grounded vs grounded+GRPO)."""

import groundkit
from groundkit import hookimpl


@hookimpl
def register_experiments(register):
    register(groundkit.CountingExperiment())
