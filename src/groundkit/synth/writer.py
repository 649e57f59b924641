"""The output store of a synthesis run: resumable, loss-free, keyed by record id.

``data.jsonl`` holds the kept SFT records, ``dropped.jsonl`` one line per dropped record
with its reason. Every input id ends up in exactly one of them. Each line is written with
one ``write`` on a file opened for appending, and the batch is fsynced before the next
starts, so a run killed at any point leaves whole lines plus at most one torn last line;
on restart a torn line is cut off (its record is redone), ids already present are skipped,
and a duplicate id (which the run never writes) would be ignored on read, first wins.
``run.json`` keeps the config fingerprint: resuming with another config is an error.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from groundkit.errors import ConfigError, DataError

KEPT, DROPPED, RUN = "data.jsonl", "dropped.jsonl", "run.json"


class _File:
    def __init__(self, path: Path):
        self.path = path
        self.rows: dict[str, dict[str, Any]] = {}
        self.torn = 0
        self.duplicates = 0
        if path.exists():
            self._load()

    def _load(self) -> None:
        data = self.path.read_bytes()
        good = 0
        for line in data.splitlines(keepends=True):
            if not line.endswith(b"\n"):
                break
            try:
                row = json.loads(line)
                rid = str(row["id"])
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise DataError(f"{self.path}: a whole line is not a record ({exc}); the file was edited by hand?") from None
            if rid in self.rows:
                self.duplicates += 1
            else:
                self.rows[rid] = row
            good += len(line)
        if good < len(data):  # a torn last line: cut it, its record is redone
            self.torn += 1
            with self.path.open("r+b") as f:
                f.truncate(good)

    def append(self, fd: int, row: dict[str, Any]) -> None:
        os.write(fd, (json.dumps(row, ensure_ascii=False) + "\n").encode("utf-8"))
        self.rows[str(row["id"])] = row


class SynthStore:
    """Kept and dropped records of a run in ``out`` (see the module docstring)."""

    def __init__(self, out: str | Path, fingerprint: str | None = None, fresh: bool = False):
        self.out = Path(out)
        self.out.mkdir(parents=True, exist_ok=True)
        if fresh:
            for name in (KEPT, DROPPED, RUN):
                (self.out / name).unlink(missing_ok=True)
        self._check_run(fingerprint)
        self.kept = _File(self.out / KEPT)
        self.dropped = _File(self.out / DROPPED)

    def _check_run(self, fingerprint: str | None) -> None:
        run = self.out / RUN
        if fingerprint is None:
            return
        if run.exists():
            old = json.loads(run.read_text(encoding="utf-8")).get("fingerprint")
            if old != fingerprint:
                raise ConfigError(f"{self.out} holds a run made with another config; use --fresh (or another out) to start over", "out")
            return
        tmp = run.with_suffix(".tmp")
        tmp.write_text(json.dumps({"fingerprint": fingerprint}), encoding="utf-8")
        os.replace(tmp, run)

    def done(self) -> set[str]:
        return set(self.kept.rows) | set(self.dropped.rows)

    def __contains__(self, rid: str) -> bool:
        return rid in self.kept.rows or rid in self.dropped.rows

    def write(self, kept: Iterable[dict[str, Any]] = (), dropped: Iterable[dict[str, Any]] = ()) -> None:
        """Append a batch (records already present are skipped) and fsync both files."""
        for f, rows in ((self.kept, kept), (self.dropped, dropped)):
            rows = [r for r in rows if str(r["id"]) not in self]
            if not rows:
                continue
            fd = os.open(f.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                for row in rows:
                    f.append(fd, row)
                os.fsync(fd)
            finally:
                os.close(fd)
