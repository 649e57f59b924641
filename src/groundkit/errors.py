"""Typed errors. Every error a user can cause derives from :class:`GroundkitError`."""

from __future__ import annotations

from collections.abc import Iterable


class GroundkitError(Exception):
    """Base class: the CLI prints these as one clear message and exits non-zero."""


class FrameError(GroundkitError, ValueError):
    """A coordinate frame cannot convert or bound a value (unknown frame, missing image size, ...)."""


class FormatError(GroundkitError, ValueError):
    """A trace cannot be written in a dialect (unsupported grounding type, forbidden text, ...)."""


class GrammarError(GroundkitError):
    """A grammar could not be composed from its skeleton and grounding-type rules."""


class PluginError(GroundkitError):
    """A plugin registered something invalid, or two plugins registered the same name."""


class UnknownNameError(GroundkitError, KeyError):
    """A dialect, frame, grounding type or other registered name does not exist."""

    def __init__(self, kind: str, name: str, known: Iterable[str]):
        self.kind, self.name, self.known = kind, name, sorted(known)
        super().__init__(f"unknown {kind} {name!r}; known: {', '.join(self.known) or '(none)'}")

    def __str__(self) -> str:  # KeyError would quote the message
        return self.args[0]


class ConfigError(GroundkitError, ValueError):
    """A configuration file or value is wrong; the message names the offending key (``teacher.model``)."""

    def __init__(self, message: str, key: str | None = None):
        self.key = key
        super().__init__(f"config key {key!r}: {message}" if key is not None else message)


class DataError(GroundkitError, ValueError):
    """A data record is missing fields or is corrupt; the message names the record."""

    def __init__(self, message: str, record_id: str | None = None):
        self.record_id = record_id
        super().__init__(f"record {record_id}: {message}" if record_id is not None else message)


def line_column(text: str, offset: int) -> tuple[int, int]:
    """1-based line and column of ``offset`` in ``text`` (offset may equal ``len(text)``)."""
    offset = max(0, min(offset, len(text)))
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return line, column


def excerpt(text: str, offset: int, width: int = 60) -> str:
    """The line around ``offset``, clipped to ``width`` characters, with a caret under it."""
    offset = max(0, min(offset, len(text)))
    start = text.rfind("\n", 0, offset) + 1
    end = text.find("\n", offset)
    end = len(text) if end == -1 else end
    lo = max(start, offset - width // 2)
    hi = min(end, lo + width)
    prefix = "..." if lo > start else ""
    suffix = "..." if hi < end else ""
    shown = prefix + text[lo:hi] + suffix
    caret = " " * (len(prefix) + offset - lo) + "^"
    return f"{shown}\n{caret}"


class ParseError(GroundkitError, ValueError):
    """Text that does not follow a dialect's grammar (or whose values break its frame).

    Carries ``offset`` (0-based), ``line`` and ``column`` (1-based), an ``excerpt`` with a
    caret, the ``expected`` terminals (human-readable), and ``truncated`` when the text
    ended early (a valid prefix that is not complete).
    """

    def __init__(
        self,
        reason: str,
        text: str,
        offset: int,
        expected: Iterable[str] = (),
        truncated: bool = False,
        record_id: str | None = None,
    ):
        self.reason = reason
        self.text = text
        self.offset = offset
        self.line, self.column = line_column(text, offset)
        self.expected = sorted(set(expected))
        self.truncated = truncated
        self.record_id = record_id
        self.excerpt = excerpt(text, offset)
        super().__init__(self._message())

    def _message(self) -> str:
        where = f"line {self.line}, column {self.column}"
        if self.record_id is not None:
            where = f"record {self.record_id}, {where}"
        msg = f"{where}: {self.reason}"
        if self.expected:
            shown = ", ".join(self.expected[:12]) + (", ..." if len(self.expected) > 12 else "")
            msg += f"; expected one of: {shown}"
        return f"{msg}\n{self.excerpt}"

    def with_record(self, record_id: str) -> ParseError:
        """The same error, naming the record it came from."""
        return ParseError(self.reason, self.text, self.offset, self.expected, self.truncated, record_id)
