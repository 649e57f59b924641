"""Resumable stages: each finished stage leaves ``DIR/stages/NAME.json`` with its result, its
settings' fingerprint and its duration, so a rerun skips it (and a changed setting redoes it)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from groundkit.errors import GroundkitError
from groundkit.interfaces.experiment import Progress


def fingerprint(settings: Mapping[str, Any]) -> str:
    """A short stable hash of a stage's settings (JSON, sorted keys)."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]


class StageRunner:
    """Runs an experiment's stages in order, resuming the finished ones."""

    def __init__(self, out: Path, fresh: bool = False, progress: Progress | None = None):
        self.out = Path(out)
        self.dir = self.out / "stages"
        if fresh and self.out.exists():
            for child in self.out.iterdir():
                shutil.rmtree(child) if child.is_dir() else child.unlink()
        self.dir.mkdir(parents=True, exist_ok=True)
        self.progress = progress
        self.records: dict[str, dict[str, Any]] = {}

    def run(self, name: str, settings: Mapping[str, Any], work: Callable[[], dict[str, Any]],
            outputs: Path | None = None, after: Sequence[str] = ()) -> dict[str, Any]:
        """The stage's result: from its marker when it finished with the same settings, else by
        running ``work`` (after clearing ``outputs``, a folder it writes, left half-done by a kill).

        ``after`` names the stages whose output it consumes: their fingerprints join its settings, so
        a changed upstream stage redoes this one even when its outputs' paths stay the same."""
        if after:
            settings = {**settings, "after": {n: self._fingerprint_of(n) for n in after}}
        marker = self.dir / f"{name}.json"
        key = fingerprint(settings)
        if marker.exists():
            try:
                done = json.loads(marker.read_text(encoding="utf-8"))
            except (json.JSONDecodeError, UnicodeDecodeError):
                done = {}
            if done.get("fingerprint") == key:
                self.records[name] = {**done, "resumed": True}
                self._tell(name, 1, 1)
                return done["result"]
        if outputs is not None and outputs.exists():
            shutil.rmtree(outputs)
        self._tell(name, 0, 1)
        start = time.monotonic()
        try:
            result = work()
        except GroundkitError as exc:
            raise GroundkitError(f"experiment stage {name!r} failed: {exc}") from exc
        record = {"stage": name, "fingerprint": key, "settings": dict(settings), "seconds": time.monotonic() - start,
                  "result": result}
        tmp = marker.with_suffix(".tmp")
        tmp.write_text(json.dumps(record, indent=2, default=str), encoding="utf-8")
        os.replace(tmp, marker)
        self.records[name] = {**record, "resumed": False}
        self._tell(name, 1, 1)
        return result

    def _fingerprint_of(self, name: str) -> str:
        """The settings fingerprint a stage of this session ran (or resumed) with."""
        if name not in self.records:
            raise GroundkitError(f"experiment stage {name!r} has not run in this session")
        return str(self.records[name]["fingerprint"])

    def seconds(self) -> float:
        """Compute time of every stage so far (resumed ones count with their recorded time)."""
        return sum(float(r.get("seconds", 0.0)) for r in self.records.values())

    def _tell(self, name: str, done: int, total: int) -> None:
        if self.progress is not None:
            self.progress(name, done, total)
