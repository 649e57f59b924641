"""The per-record results file of an eval run: append-only JSONL, one line per finished record.

Each line is written with a single ``write`` on a file opened for appending and flushed to
disk per batch, so an interrupted run leaves whole lines (at worst one torn last line,
which is dropped on resume) and a resumed run skips every record already there.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

Key = tuple[str, str]


def row_key(row: dict[str, Any]) -> Key:
    return (str(row["bench"]), str(row["id"]))


class ResultStore:
    """Finished records of a run (``results.jsonl`` in the output folder)."""

    def __init__(self, path: Path):
        self.path = path
        self.rows: dict[Key, dict[str, Any]] = {}
        self.dropped = 0
        if path.exists():
            self._load()

    def _load(self) -> None:
        data = self.path.read_bytes()
        good_end = 0
        for line in data.splitlines(keepends=True):
            if not line.endswith(b"\n"):
                break  # torn last line of an interrupted write
            try:
                row = json.loads(line)
                self.rows[row_key(row)] = row
            except (json.JSONDecodeError, KeyError, TypeError):
                self.dropped += 1
            good_end += len(line)
        if good_end < len(data):
            self.dropped += 1
            with self.path.open("r+b") as f:
                f.truncate(good_end)

    def __contains__(self, key: Key) -> bool:
        return key in self.rows

    def append(self, rows: Iterable[dict[str, Any]]) -> None:
        """Append rows (one ``write`` per line) and flush them to disk."""
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            for row in rows:
                os.write(fd, (json.dumps(row, ensure_ascii=False) + "\n").encode("utf-8"))
                self.rows[row_key(row)] = row
            os.fsync(fd)
        finally:
            os.close(fd)
