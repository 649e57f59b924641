"""The trace model: thoughts interleaved with groundings, then an answer.

Coordinates are stored in one canonical frame: floats in [0, 1] of the *original* image,
flat ``(x, y, x, y, ...)``. Each grounding also remembers the frame it was written in, the
values as written and the exact source span; those are provenance and do not take part in
equality, so a trace parsed from two dialects compares equal when it means the same thing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Union

from groundkit.errors import DataError


@dataclass(frozen=True)
class Text:
    """A run of free reasoning text."""

    text: str
    span: tuple[int, int] | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Grounding:
    """One grounding (point, box, mask polygon, or a plugin type) in the canonical frame."""

    type: str
    coords: tuple[float, ...]
    label: str | None = None
    frame: str | None = field(default=None, compare=False)
    raw: tuple[float, ...] | None = field(default=None, compare=False)
    span: tuple[int, int] | None = field(default=None, compare=False)

    @property
    def points(self) -> list[tuple[float, float]]:
        """The coordinates as (x, y) pairs."""
        c = self.coords
        return [(c[i], c[i + 1]) for i in range(0, len(c) - 1, 2)]

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"type": self.type, "coords": list(self.coords)}
        if self.label is not None:
            d["label"] = self.label
        if self.frame is not None:
            d["frame"] = self.frame
        if self.raw is not None:
            d["raw"] = list(self.raw)
        if self.span is not None:
            d["span"] = list(self.span)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Grounding:
        try:
            return cls(
                type=str(d["type"]),
                coords=tuple(float(v) for v in d["coords"]),
                label=d.get("label"),
                frame=d.get("frame"),
                raw=tuple(float(v) for v in d["raw"]) if d.get("raw") is not None else None,
                span=tuple(d["span"]) if d.get("span") is not None else None,  # type: ignore[arg-type]
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"bad grounding {d!r}: {exc}") from exc


Segment = Union[Text, Grounding]


@dataclass(frozen=True)
class Problem:
    """A span that lenient reading skipped (a malformed, degenerate or out-of-frame grounding) and why."""

    span: tuple[int, int]
    reason: str
    kind: str = "grounding"

    def to_dict(self) -> dict[str, Any]:
        return {"span": list(self.span), "reason": self.reason, "kind": self.kind}


@dataclass(frozen=True)
class Trace:
    """A parsed completion: ``think`` segments (text and groundings, in order) and the answer."""

    think: tuple[Segment, ...] = ()
    answer: str | None = None
    dialect: str | None = field(default=None, compare=False)
    source: str | None = field(default=None, compare=False, repr=False)
    #: What lenient reading skipped (always empty for a strict parse).
    problems: tuple[Problem, ...] = field(default=(), compare=False)

    @property
    def groundings(self) -> list[Grounding]:
        return [s for s in self.think if isinstance(s, Grounding)]

    @property
    def thought(self) -> str:
        """The reasoning text with groundings left out."""
        return "".join(s.text for s in self.think if isinstance(s, Text))

    def of_type(self, type_name: str) -> list[Grounding]:
        return [g for g in self.groundings if g.type == type_name]

    def __iter__(self) -> Iterator[Segment]:
        return iter(self.think)

    def to_dict(self) -> dict[str, Any]:
        segs = [{"text": s.text} if isinstance(s, Text) else {"grounding": s.to_dict()} for s in self.think]
        d: dict[str, Any] = {"think": segs, "answer": self.answer}
        if self.dialect is not None:
            d["dialect"] = self.dialect
        if self.problems:
            d["problems"] = [p.to_dict() for p in self.problems]
        return d

    def to_json(self, **kwargs: Any) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, **kwargs)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Trace:
        if not isinstance(d, dict) or "think" not in d:
            raise DataError(f"a trace needs a 'think' list, got {str(d)[:80]!r}")
        segs: list[Segment] = []
        for s in d["think"]:
            if "text" in s:
                segs.append(Text(str(s["text"])))
            elif "grounding" in s:
                segs.append(Grounding.from_dict(s["grounding"]))
            else:
                raise DataError(f"a think segment needs 'text' or 'grounding', got {s!r}")
        return cls(think=tuple(segs), answer=d.get("answer"), dialect=d.get("dialect"))

    @classmethod
    def from_json(cls, text: str) -> Trace:
        try:
            return cls.from_dict(json.loads(text))
        except json.JSONDecodeError as exc:
            raise DataError(f"not JSON: {exc}") from exc
