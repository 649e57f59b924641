"""Coordinate frames: how a number written by a model maps to the canonical [0, 1] frame.

A frame gives (a) the conversion both ways, given the original image size (and, for the
resized-input frame, the resize rule), and (b) the value constraint a decoder enforces:
the number syntax (integers / decimals) and the per-axis upper bound.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, replace
from typing import ClassVar

from groundkit.errors import FrameError

AXES = ("x", "y")
MAX_SIDE = 1 << 24
"""The largest image side (and resize parameter) a frame accepts: 16.7 M pixels."""


@dataclass(frozen=True)
class ImageSize:
    """Width and height of an image in pixels."""

    width: int
    height: int

    def __post_init__(self) -> None:
        for axis in ("width", "height"):
            object.__setattr__(self, axis, _positive_int(getattr(self, axis), f"image {axis}"))

    @classmethod
    def parse(cls, text: str) -> ImageSize:
        """Parse ``"640x480"``."""
        try:
            w, h = text.lower().split("x")
            return cls(int(w), int(h))
        except ValueError as exc:
            raise FrameError(f"image size must look like 640x480, got {text!r}") from exc


def _positive_int(value: object, what: str, limit: int = MAX_SIDE) -> int:
    """``value`` as a positive int (integral floats allowed); a :class:`FrameError` for bools, NaN, inf, 0, -1, 2.5."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise FrameError(f"{what} must be a positive integer, got {value!r}")
    if not isinstance(value, numbers.Integral) and not (math.isfinite(value) and float(value).is_integer()):
        raise FrameError(f"{what} must be a positive integer, got {value!r}")
    if int(value) <= 0:
        raise FrameError(f"{what} must be positive, got {value!r}")
    if int(value) > limit:
        raise FrameError(f"{what} {str(value)[:40]} exceeds the largest supported value ({limit})")
    return int(value)


def smart_resize(
    height: int, width: int, factor: int = 28, min_pixels: int = 56 * 56, max_pixels: int = 28 * 28 * 1280
) -> tuple[int, int]:
    """Qwen2-VL/2.5-VL/3-VL resize rule: sides multiples of ``factor``, area within [min, max] pixels.

    Returns ``(height, width)`` of the model's input. Aspect ratios above 200 are rejected.
    """
    height, width = _positive_int(height, "image height"), _positive_int(width, "image width")
    factor, min_pixels, max_pixels = (
        _positive_int(v, k, MAX_SIDE**2) for v, k in ((factor, "factor"), (min_pixels, "min_pixels"), (max_pixels, "max_pixels"))
    )
    if max(height, width) / min(height, width) > 200:
        raise FrameError(f"aspect ratio {max(height, width) / min(height, width):.1f} exceeds 200 ({width}x{height})")
    h_bar = round(height / factor) * factor
    w_bar = round(width / factor) * factor
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


@dataclass(frozen=True)
class Frame:
    """A linear frame: ``value = unit * extent(axis)``, written with ``decimals`` decimals.

    Subclasses change :meth:`extent` (fixed scales or per-image sizes). ``number_pattern``
    is the regular expression of one written value (the grammar's ``NUM`` terminal).
    """

    name: str
    scale: float = 1000.0
    decimals: int = 0
    max_decimals: int = 0
    description: str = ""
    per_image: ClassVar[bool] = False

    @property
    def integer(self) -> bool:
        return self.max_decimals == 0

    @property
    def number_pattern(self) -> str:
        whole = r"(0|[1-9][0-9]*)"
        if self.max_decimals == 0:
            return whole
        return whole + r"(\.[0-9]{1," + str(self.max_decimals) + "})?"

    def extent(self, axis: str, size: ImageSize | None = None) -> float:
        """The written value that corresponds to 1.0 on ``axis`` (also the upper bound)."""
        return self.scale

    def bounds(self, size: ImageSize | None = None) -> tuple[float, float]:
        """Upper bounds (x, y) of written values; the lower bound is 0."""
        return self.extent("x", size), self.extent("y", size)

    def to_unit(self, value: float, axis: str, size: ImageSize | None = None) -> float:
        return value / self.extent(axis, size)

    def from_unit(self, unit: float, axis: str, size: ImageSize | None = None) -> float:
        """Quantised written value for a canonical coordinate (clamped to the bounds)."""
        if not math.isfinite(unit):
            raise FrameError(f"{axis}={unit} is not a finite coordinate (frame {self.name})")
        hi = self.extent(axis, size)
        v = round(min(max(unit, 0.0), 1.0) * hi, self.decimals)
        v = min(v, hi)
        return float(int(v)) if self.decimals == 0 else v

    def check(self, value: float, axis: str, size: ImageSize | None = None, name: str | None = None) -> str | None:
        """Why ``value`` is out of this frame's bounds, or None when it is fine. ``name`` is the
        value's field name (a grounding type's ``fields``, e.g. ``rx``) used in the message
        instead of the axis."""
        hi = self.extent(axis, size)
        name = name or axis
        if not math.isfinite(value):
            return f"{name} is not a finite number (too many digits?) in frame {self.name}"
        if not 0 <= value <= hi:
            return f"{name}={format_number(value, self.max_decimals)} is outside [0, {format_number(hi, 0)}] of frame {self.name}"
        return None

    def format_value(self, value: float) -> str:
        return format_number(value, self.decimals)


def format_number(value: float, decimals: int) -> str:
    """Canonical text of a value: integers without a point, decimals without trailing zeros."""
    if not math.isfinite(value):
        return str(value)
    if decimals == 0 or float(value).is_integer():
        return str(int(round(value)))
    return f"{value:.{decimals}f}".rstrip("0").rstrip(".")


@dataclass(frozen=True)
class OriginalPixelFrame(Frame):
    """Absolute pixels of the original image (bounds differ per image)."""

    per_image: ClassVar[bool] = True

    def extent(self, axis: str, size: ImageSize | None = None) -> float:
        if size is None:
            raise FrameError(f"frame {self.name} needs the image size (pass image_size / --image-size)")
        return float(size.width if axis == "x" else size.height)


@dataclass(frozen=True)
class ResizedPixelFrame(Frame):
    """Absolute pixels of the model's resized input (Qwen ``smart_resize``)."""

    factor: int = 28
    min_pixels: int = 56 * 56
    max_pixels: int = 28 * 28 * 1280
    per_image: ClassVar[bool] = True

    def __post_init__(self) -> None:
        for key in ("factor", "min_pixels", "max_pixels"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise FrameError(f"frame {self.name}: {key} must be a positive integer, got {value!r}")
        if self.min_pixels > self.max_pixels:
            raise FrameError(f"frame {self.name}: min_pixels ({self.min_pixels}) exceeds max_pixels ({self.max_pixels})")

    def resized(self, size: ImageSize) -> ImageSize:
        h, w = smart_resize(size.height, size.width, self.factor, self.min_pixels, self.max_pixels)
        return ImageSize(w, h)

    def extent(self, axis: str, size: ImageSize | None = None) -> float:
        if size is None:
            raise FrameError(f"frame {self.name} needs the original image size (pass image_size / --image-size)")
        r = self.resized(size)
        return float(r.width if axis == "x" else r.height)

    def with_params(self, **params: int) -> ResizedPixelFrame:
        """The same rule with other factor/min_pixels/max_pixels (e.g. a processor's settings)."""
        unknown = set(params) - {"factor", "min_pixels", "max_pixels"}
        if unknown:
            raise FrameError(f"frame {self.name} has no parameter(s) {sorted(unknown)}")
        merged = {"factor": self.factor, "min_pixels": self.min_pixels, "max_pixels": self.max_pixels, **params}
        base = self.name.partition(":")[0]
        spec = f"{base}:factor={merged['factor']},min_pixels={merged['min_pixels']},max_pixels={merged['max_pixels']}"
        return replace(self, name=spec, **params)


def builtin_frames() -> list[Frame]:
    """The frames groundkit ships (registered by the built-in ``frames`` plugin)."""
    return [
        Frame("rel-1000", scale=1000.0, description="integers 0..1000 relative to the image"),
        Frame("percent-100", scale=100.0, decimals=1, max_decimals=2, description="percent 0..100, one decimal"),
        Frame("unit", scale=1.0, decimals=3, max_decimals=4, description="floats 0..1 relative to the image"),
        OriginalPixelFrame("abs-original", scale=0.0, description="integer pixels of the original image"),
        ResizedPixelFrame(
            "abs-resized",
            scale=0.0,
            description="integer pixels of the model's resized input (Qwen2.5-VL smart_resize, factor 28)",
        ),
    ]


def parse_frame_spec(spec: str) -> tuple[str, dict[str, int]]:
    """``"abs-resized:factor=32,max_pixels=1000000"`` -> ``("abs-resized", {...})``."""
    if not isinstance(spec, str):
        hint = f" (use its name, {spec.name!r})" if isinstance(getattr(spec, "name", None), str) else ""
        raise FrameError(f"a frame is given by its spec string such as 'rel-1000', got {type(spec).__name__}{hint}")
    name, _, rest = spec.partition(":")
    params: dict[str, int] = {}
    for item in filter(None, rest.split(",")):
        key, eq, value = item.partition("=")
        if not eq:
            raise FrameError(f"frame parameter must be key=value, got {item!r} in {spec!r}")
        try:
            params[key.strip()] = int(value)
        except ValueError as exc:
            raise FrameError(f"frame parameter {key!r} must be an integer in {spec!r}") from exc
    return name.strip(), params


# --- the model's own resize rule ---------------------------------------------------------------
class FrameWarning(UserWarning):
    """A frame whose parameters differ from what the model actually does."""


def resize_params(image_processor: object) -> dict[str, int] | None:
    """``factor``, ``min_pixels`` and ``max_pixels`` of a loaded Qwen-style image processor
    (``patch_size * merge_size``; ``size["shortest_edge"/"longest_edge"]``, or ``min_pixels`` /
    ``max_pixels`` in older transformers), or None when it has no ``smart_resize`` settings."""
    patch, merge = getattr(image_processor, "patch_size", None), getattr(image_processor, "merge_size", None)
    if not isinstance(patch, int) or not isinstance(merge, int):
        return None
    size = getattr(image_processor, "size", None)

    def read(key: str, old: str) -> object:
        value = size.get(key) if isinstance(size, dict) else getattr(size, key, None)
        return value if value is not None else getattr(image_processor, old, None)

    lo, hi = read("shortest_edge", "min_pixels"), read("longest_edge", "max_pixels")
    if not isinstance(lo, int) or not isinstance(hi, int):
        return None
    return {"factor": patch * merge, "min_pixels": lo, "max_pixels": hi}


def resized_frame_spec(image_processor: object) -> str | None:
    """The ``abs-resized`` frame spec of a loaded image processor (``abs-resized:factor=28,
    min_pixels=...,max_pixels=...``), or None when it does not resize with ``smart_resize``."""
    params = resize_params(image_processor)
    if params is None:
        return None
    return "abs-resized:" + ",".join(f"{k}={v}" for k, v in params.items())
