"""Dialects (formats): a grammar skeleton plus a default coordinate frame."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources


@dataclass(frozen=True)
class Dialect:
    """A named output format.

    ``skeleton`` is Lark grammar text with the think/answer structure, the free-text
    terminal ``TEXT`` and ``LABEL``/``_SEP`` terminals; it refers to a rule ``grounding``
    that the composer defines from the enabled grounding types, and to ``NUM``, the frame's
    number terminal. ``layout`` is how the formatter wraps the parts (``{think}`` and
    ``{answer}``); the round-trip tests hold it to the skeleton.
    """

    name: str
    skeleton: str
    default_frame: str
    layout: str = "<think>{think}</think><answer>{answer}</answer>"
    description: str = ""
    example: str = ""


def read_grammar(package: str, *parts: str) -> str:
    """Read a packaged ``.lark`` file (works from a source tree and from an installed wheel)."""
    return resources.files(package).joinpath(*parts).read_text(encoding="utf-8")
