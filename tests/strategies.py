"""Hypothesis strategies: random traces that a dialect can write, with values valid in a frame."""

from __future__ import annotations

from hypothesis import strategies as st

import groundkit as gk

TEXT_ALPHABET = "abcdefghijklmnopqrstuvwxyz ABCXYZ0123456789.,;:!?-()[]'\n\"/"
LABELS = st.from_regex(r"[a-z][a-z ]{0,8}[a-z]", fullmatch=True)


def text_for(dialect: str) -> st.SearchStrategy[str]:
    alphabet = TEXT_ALPHABET.replace("{", "") if dialect == "qwen-json" else TEXT_ALPHABET
    return st.text(alphabet, min_size=1, max_size=25)


def written_value(frame: gk.Frame, hi: float) -> st.SearchStrategy[float]:
    """A value as the frame writes it (integers, or the frame's decimals), in [0, hi]."""
    if frame.decimals == 0:
        return st.integers(0, int(hi)).map(float)
    scale = 10**frame.decimals
    return st.integers(0, int(hi * scale)).map(lambda v: round(v / scale, frame.decimals))


@st.composite
def grounding(draw, gtype: gk.GroundingType, frame: gk.Frame, size: gk.ImageSize | None, with_label: bool):
    n = gtype.arity or 2 * draw(st.integers(gtype.min_vertices, gtype.min_vertices + 3))
    axes = gtype.axes(n)
    values = [draw(written_value(frame, frame.extent(a, size))) for a in axes]
    for i, j in gtype.ordering:  # make the ordered pairs strictly increasing
        lo, hi = sorted((values[i], values[j]))
        if lo == hi:
            step = 10.0**-frame.decimals
            lo, hi = (round(lo - step, frame.decimals), lo) if lo - step >= 0 else (lo, round(lo + step, frame.decimals))
        values[j], values[i] = lo, hi
    coords = tuple(frame.to_unit(v, a, size) for v, a in zip(values, axes))
    label = draw(st.none() | LABELS) if with_label else None
    return gk.Grounding(gtype.name, coords, label)


@st.composite
def trace(draw, dialect: str, frame_name: str | None = None, size: gk.ImageSize | None = None):
    """A trace with alternating text and groundings (never two texts in a row)."""
    grammar = gk.get_grammar(dialect, frame_name)
    segments: list[gk.Text | gk.Grounding] = []
    for _ in range(draw(st.integers(0, 5))):
        if draw(st.booleans()):
            segments.append(gk.Text(draw(text_for(dialect))))
        gtype = draw(st.sampled_from(grammar.types))
        segments.append(draw(grounding(gtype, grammar.frame, size, grammar.syntax(gtype.name).writes_label)))
    if draw(st.booleans()):
        segments.append(gk.Text(draw(text_for(dialect))))
    answer = draw(st.text("abcdefgh 0123456789.", max_size=12))
    return gk.Trace(tuple(segments), answer)
