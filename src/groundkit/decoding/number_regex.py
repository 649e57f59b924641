"""Regular expressions of bounded numbers: what a frame's ``NUM`` becomes in a grammar export.

Fixed-scale frames (``rel-1000``, ``percent-100``, ``unit``) have one upper bound for the
whole batch, so the bound fits in a regex: ``0..1000`` without leading zeros, or ``0..100``
with up to two decimals. Per-image frames have one bound per image and axis; a regex shared
by a batch can only carry the largest of them (see :func:`frame_bound`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from groundkit.errors import GrammarError
from groundkit.frames import Frame, ImageSize


class PerImageBoundError(GrammarError):
    """A per-image frame's bound cannot be written into one grammar without the image size(s)."""


def _digits(n: int) -> str:
    return "[0-9]" * n if n <= 2 else f"[0-9]{{{n}}}"


def uint_upto(hi: int) -> str:
    """Regex of the integers ``0..hi`` written without leading zeros (``hi >= 0``)."""
    if hi < 0:
        raise GrammarError(f"upper bound must be >= 0, got {hi}")
    if hi < 10:
        return "0" if hi == 0 else f"[0-{hi}]"
    digits = str(hi)
    alts = ["[0-9]"] + ["[1-9]" + _digits(n - 1) for n in range(2, len(digits))]  # shorter than hi
    for i, d in enumerate(digits):  # as long as hi: hi's prefix, a smaller digit, then anything
        lo, top = (1 if i == 0 else 0), int(d) - 1
        if top >= lo:
            alts.append(digits[:i] + (str(lo) if top == lo else f"[{lo}-{top}]") + _digits(len(digits) - i - 1))
    alts.append(digits)
    return "(?:" + "|".join(alts) + ")"


def number_upto(hi: int, max_decimals: int) -> str:
    """Regex of numbers in ``[0, hi]`` with at most ``max_decimals`` decimals (``hi`` itself only with zeros)."""
    if max_decimals == 0:
        return uint_upto(hi)
    frac = rf"(?:\.[0-9]{{1,{max_decimals}}})?"
    zeros = rf"(?:\.0{{1,{max_decimals}}})?"
    if hi == 0:
        return f"0{zeros}"
    return f"(?:{uint_upto(hi - 1)}{frac}|{hi}{zeros})"


def frame_bound(frame: Frame, image_sizes: ImageSize | Sequence[ImageSize | None] | None = None) -> int:
    """The integer upper bound a batch-wide regex can use for ``frame``.

    Fixed-scale frames give their scale. Per-image frames need the image size(s): the bound
    is the largest extent over the given images and both axes, so a regex shared by a batch
    admits values that are out of bounds for smaller images or the shorter axis. Without
    sizes a per-image frame raises :class:`PerImageBoundError`.
    """
    if not frame.per_image:
        hi = frame.extent("x")
        if hi != frame.extent("y") or not float(hi).is_integer():
            raise GrammarError(f"frame {frame.name} has no single integer bound (x {hi}, y {frame.extent('y')})")
        return int(hi)
    sizes = [image_sizes] if isinstance(image_sizes, ImageSize) else [s for s in (image_sizes or ()) if s is not None]
    if not sizes:
        raise PerImageBoundError(
            f"frame {frame.name} bounds values per image; one regex/grammar for a batch can only use the largest "
            "bound of its images. Pass image_size=ImageSize(w, h) (or the batch's sizes) to export it, or export "
            "with bounded=False for the unbounded number syntax."
        )
    return max(int(math.floor(frame.extent(axis, s))) for s in sizes for axis in ("x", "y"))


def num_regex(
    frame: Frame, image_sizes: ImageSize | Sequence[ImageSize | None] | None = None, bounded: bool = True
) -> str:
    """The regex an export uses for the frame's ``NUM`` terminal (bounded unless ``bounded=False``)."""
    if not bounded:
        return frame.number_pattern
    return number_upto(frame_bound(frame, image_sizes), frame.max_decimals)
