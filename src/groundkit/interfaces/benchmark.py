"""The benchmark adapter interface: local benchmark files -> ground-truth records."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from groundkit.errors import DataError
    from groundkit.rewards.groundtruth import GroundTruth


class BenchmarkAdapter:
    """Base class of adapters. Subclasses set ``name`` (and ``description``, ``formats``) and
    implement :meth:`load`, yielding one :class:`GroundTruth` or :class:`DataError` per row.
    ``split`` (None: the only split there is) and ``images`` (a folder of the benchmark's
    images) come from ``--bench NAME:PATH[:SPLIT][?images=DIR]``; an adapter whose ``load``
    lacks them refuses specs that set them."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    formats: ClassVar[str] = ""

    def load(self, path: Path, media_dir: Path | None = None, split: str | None = None,
             images: Path | None = None) -> Iterator[GroundTruth | DataError]:
        raise NotImplementedError(f"benchmark adapter {self.name!r} does not implement load()")
