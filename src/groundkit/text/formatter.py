"""Trace -> text in a dialect's canonical form, and conversion between dialects."""

from __future__ import annotations

from collections.abc import Sequence

import regex

from groundkit.errors import FormatError
from groundkit.frames import Frame, ImageSize
from groundkit.interfaces.grounding import GroundingType
from groundkit.text.grammar import ComposedGrammar, get_grammar
from groundkit.trace import Grounding, Text, Trace


def _check_text(grammar: ComposedGrammar, terminal: str, text: str, what: str) -> None:
    if not text:
        return
    pattern = regex.compile(grammar.terminal_pattern(terminal))
    if pattern.fullmatch(text) is None:
        bad = next((c for c in text if pattern.fullmatch(c) is None), text[:1])
        raise FormatError(f"{what} {text[:40]!r} cannot be written in dialect {grammar.dialect.name!r}: character {bad!r} is not allowed there")


def written_values(gtype: GroundingType, g: Grounding, frame: Frame, size: ImageSize | None) -> list[float]:
    """Quantised values of ``g`` in ``frame``; an ordering collapsed by rounding is nudged one step apart,
    a value rounded below its minimum one step up."""
    axes = gtype.axes(len(g.coords))
    values = [frame.from_unit(c, a, size) for c, a in zip(g.coords, axes)]
    step = 10.0 ** -frame.decimals
    for i, j in gtype.ordering:
        if not values[i] > values[j]:
            hi = frame.extent(axes[i], size)
            if values[j] + step <= hi:
                values[i] = round(values[j] + step, frame.decimals)
            else:
                values[j] = round(values[i] - step, frame.decimals)
    for i, least in gtype.minimums.items():  # a value rounded below its minimum goes up one step
        if i < len(values) and frame.to_unit(values[i], axes[i], size) < least - 1e-9:
            values[i] = min(round(values[i] + step, frame.decimals), frame.extent(axes[i], size))
    return values


def format_grounding(grammar: ComposedGrammar, g: Grounding, size: ImageSize | None = None, lossy: bool = False) -> str:
    """Canonical text of one grounding; a label the dialect cannot hold is an error unless ``lossy``."""
    if g.type not in grammar.type_names:
        raise FormatError(
            f"dialect {grammar.dialect.name!r} (types {', '.join(grammar.type_names)}) cannot write a {g.type!r} grounding"
        )
    gtype = grammar.grounding_type(g.type)
    hit = gtype.check_minimums(g.coords)
    problem = gtype.check_values(g.coords) or (hit[1] if hit else None)
    if problem:
        raise FormatError(problem)
    syntax = grammar.syntax(g.type)
    label = g.label or None
    if label is not None and not syntax.writes_label:
        if not lossy:
            raise FormatError(
                f"dialect {grammar.dialect.name!r} has no place for the label {label!r} of a {g.type}; "
                "convert with lossy=True (--lossy) to drop labels"
            )
        label = None
    if label is not None:
        _check_text(grammar, "LABEL", label, "label")
    frame = grammar.frame
    values = [frame.format_value(v) for v in written_values(gtype, g, frame, size)]
    return syntax.write(label, values)


def format_trace(
    trace: Trace,
    dialect: str = "groundkit",
    frame: str | None = None,
    types: Sequence[str] | None = None,
    image_size: ImageSize | tuple[int, int] | None = None,
    lossy: bool = False,
) -> str:
    """Write ``trace`` in ``dialect`` (canonical spacing, the frame's quantisation)."""
    if isinstance(image_size, tuple):
        image_size = ImageSize(*image_size)
    grammar = get_grammar(dialect, frame, types)
    think: list[str] = []
    for seg in trace.think:
        if isinstance(seg, Text):
            _check_text(grammar, "TEXT", seg.text, "text")
            think.append(seg.text)
        else:
            think.append(format_grounding(grammar, seg, image_size, lossy))
    answer = trace.answer or ""
    _check_text(grammar, "ANSWER", answer, "answer")
    return grammar.dialect.layout.format(think="".join(think), answer=answer)


def convert(
    text: str,
    source: str,
    target: str,
    source_frame: str | None = None,
    target_frame: str | None = None,
    image_size: ImageSize | tuple[int, int] | None = None,
    lossy: bool = False,
) -> str:
    """Parse ``text`` in dialect ``source`` and write it in ``target`` (coordinates converted)."""
    from groundkit.text.parser import parse

    trace = parse(text, source, source_frame, image_size=image_size)
    return format_trace(trace, target, target_frame, image_size=image_size, lossy=lossy)
