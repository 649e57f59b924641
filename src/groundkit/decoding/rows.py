"""The rows of one generation batch: image sizes checked when the processor is built (not at
the first step inside ``generate()``), their value bounds, and declared repetition."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from groundkit.decoding.runtime import row_bounds
from groundkit.decoding.tables import MAX_PIXEL_BOUND
from groundkit.errors import FrameError, GroundkitError
from groundkit.frames import Frame, ImageSize


def check_sizes(frame: Frame, image_sizes: Sequence[ImageSize | None] | None) -> list[ImageSize | None] | None:
    """``image_sizes`` as a list of :class:`ImageSize` (None allowed where the frame has no
    per-image bounds); a per-image frame needs one per prompt. Raises :class:`FrameError`
    naming the argument and the row."""
    if image_sizes is None:
        if frame.per_image:
            raise FrameError(f"frame {frame.name} has per-image bounds: pass image_sizes= (one ImageSize per prompt)")
        return None
    if isinstance(image_sizes, (ImageSize, str, bytes)) or not isinstance(image_sizes, Sequence):
        raise FrameError(f"image_sizes= must be a list with one ImageSize (or None) per prompt, got {type(image_sizes).__name__}")
    sizes = list(image_sizes)
    for i, size in enumerate(sizes):
        if size is None:
            if frame.per_image:
                raise FrameError(f"image_sizes[{i}] is None, but frame {frame.name} has per-image bounds and needs every size")
            continue
        if not isinstance(size, ImageSize):  # ImageSize itself guarantees positive whole sides
            raise FrameError(f"image_sizes[{i}] must be an ImageSize, got {size!r}")
    return sizes


def prompt_bounds(frame: Frame, sizes: list[ImageSize | None] | None) -> np.ndarray | None:
    """(prompts, 2) scaled bounds, computed now so the decoder's range (sides written up to
    99,999 px) and the frame's own limits (an aspect ratio ``smart_resize`` rejects) fail
    when the processor is built."""
    if sizes is None:
        return None
    scale = 10**frame.max_decimals
    out = np.zeros((len(sizes), 2), np.int64)
    for i, size in enumerate(sizes):
        for axis, name in enumerate("xy"):
            try:
                hi = frame.extent(name, size)
            except FrameError as err:
                raise FrameError(f"image_sizes[{i}] = {size}: {err}") from err
            if frame.per_image and hi > MAX_PIXEL_BOUND:
                raise FrameError(f"image_sizes[{i}] = {size}: the {name} side written in frame {frame.name} is {hi:g} px, "
                                 f"beyond the decoder's limit of {MAX_PIXEL_BOUND} px")
            out[i, axis] = round(hi * scale)
    return out


def expand_rows(bounds: np.ndarray | None, frame: Frame, batch: int, num_return_sequences: int) -> np.ndarray:
    """Per-row bounds for a batch of ``batch`` rows: each prompt's bounds repeated
    ``num_return_sequences`` times (as ``generate()`` lays its rows out)."""
    if bounds is None:
        return row_bounds(frame, None, batch)
    expected = len(bounds) * num_return_sequences
    if batch != expected:
        declared = f" x num_return_sequences={num_return_sequences} = {expected}" if num_return_sequences > 1 else ""
        hint = ("; declare repeated rows with num_return_sequences= (as passed to generate())" if batch % len(bounds) == 0
                and num_return_sequences == 1 else "")
        raise GroundkitError(f"the processor was built for {len(bounds)} rows{declared}, "
                             f"generate() passed {batch}{hint}")
    return np.repeat(bounds, num_return_sequences, axis=0)
