"""Grammar composition: a dialect's skeleton + one rule per enabled grounding type + the frame's NUM.

The composed text is the single source of truth: the parser, the decoder's automaton and
the exports for other engines are all derived from it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import lark

from groundkit.errors import GrammarError
from groundkit.frames import Frame
from groundkit.interfaces.dialect import Dialect
from groundkit.interfaces.grounding import GroundingType, Syntax
from groundkit.registry import on_registry_change

DEFINITION = re.compile(r"^\s*[?!]?([A-Za-z_][A-Za-z0-9_]*)(?:\.-?\d+)?\s*:", re.MULTILINE)
#: Most characters of *structural* whitespace (a skeleton's ``_WS``: before ``<think>``, between
#: ``</think>`` and ``<answer>``, after ``</answer>``) the decoding grammar lets a model write.
#: The reading grammar keeps the skeleton's own definition (any amount), so the parser stays tolerant.
MAX_STRUCTURAL_WS = 2
_WS_DEFINITION = re.compile(r"^(_WS\s*:\s*/)(\[[^\]/]*\])\+(/)[ \t]*$", re.MULTILINE)


@dataclass(frozen=True)
class ComposedGrammar:
    """A dialect's grammar for one frame and a set of grounding types."""

    dialect: Dialect
    frame: Frame
    types: tuple[GroundingType, ...]
    text: str
    #: The grammar the parser reads when a type has a ``reading_rule`` (native forms); "" = ``text``.
    reading_text: str = ""

    def for_reading(self) -> ComposedGrammar:
        """The grammar the parser reads: ``text`` with each type's ``reading_rule`` in place of its rule."""
        if not self.reading_text:
            return self
        return ComposedGrammar(self.dialect, self.frame, self.types, self.reading_text)

    @property
    def type_names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.types)

    def syntax(self, type_name: str) -> Syntax:
        for t in self.types:
            if t.name == type_name:
                return t.syntaxes[self.dialect.name]
        raise GrammarError(f"grounding type {type_name!r} is not enabled in this grammar ({', '.join(self.type_names)})")

    def grounding_type(self, type_name: str) -> GroundingType:
        for t in self.types:
            if t.name == type_name:
                return t
        raise GrammarError(f"grounding type {type_name!r} is not enabled in this grammar ({', '.join(self.type_names)})")

    @property
    def lark(self) -> lark.Lark:
        return _build_lark(self.text)

    def terminal_pattern(self, name: str) -> str:
        """The regular expression of a named terminal (e.g. ``TEXT``, ``NUM``)."""
        return self.lark.get_terminal(name).pattern.to_regexp()


@lru_cache(maxsize=64)
def _build_lark(text: str) -> lark.Lark:
    try:
        return lark.Lark(text, parser="lalr", lexer="contextual", propagate_positions=True, maybe_placeholders=False)
    except lark.exceptions.GrammarError as exc:
        raise GrammarError(f"the composed grammar is invalid: {exc}") from exc


def check_rule_names(t: GroundingType, dialect: str, rule: str) -> None:
    """A type's rule may only define ``<type>`` and names prefixed with ``<type>_`` / ``<TYPE>_``."""
    defined = DEFINITION.findall(rule)
    if t.name not in defined:
        raise GrammarError(f"grounding type {t.name!r} ({dialect}) defines no rule named {t.name!r}")
    for name in defined:
        bare = name.lstrip("_")
        if name != t.name and not (bare.startswith(t.name + "_") or bare.startswith(t.name.upper() + "_")):
            raise GrammarError(
                f"grounding type {t.name!r} ({dialect}) defines {name!r}; names must be {t.name!r} "
                f"or start with {t.name + '_'!r} / {t.name.upper() + '_'!r}"
            )


def compose(dialect: Dialect, frame: Frame, types: tuple[GroundingType, ...]) -> ComposedGrammar:
    """Compose the grammar text and check that Lark accepts it."""
    if not types:
        raise GrammarError(f"no grounding types enabled for dialect {dialect.name!r}")
    def head(skeleton: str) -> list[str]:
        return [
            f"// groundkit grammar: dialect={dialect.name} frame={frame.name} types={','.join(t.name for t in types)}",
            f"// ---- skeleton of dialect {dialect.name}",
            skeleton.strip(),
            "// ---- grounding types",
            "grounding: " + " | ".join(t.name for t in types),
        ]

    parts, reading = head(bound_structural_whitespace(dialect.skeleton)), head(dialect.skeleton)
    for t in types:
        syntax = t.syntax(dialect.name)
        if syntax is None:
            raise GrammarError(f"grounding type {t.name!r} has no syntax for dialect {dialect.name!r}")
        check_rule_names(t, dialect.name, syntax.rule)
        parts += [f"// {t.name}", syntax.rule.strip()]
        if syntax.reading_rule is not None:
            check_rule_names(t, dialect.name, syntax.reading_rule)
        reading += [f"// {t.name} (as read: canonical and native forms)" if syntax.reading_rule else f"// {t.name}",
                    (syntax.reading_rule or syntax.rule).strip()]
    tail = [f"// ---- numbers in frame {frame.name}", f"NUM: /{frame.number_pattern}/"]
    text, reading_text = "\n".join(parts + tail) + "\n", "\n".join(reading + tail) + "\n"
    composed = ComposedGrammar(dialect, frame, types, text, reading_text if reading_text != text else "")
    _ = composed.lark  # fail early, with the composed text in the message
    _ = composed.for_reading().lark
    return composed


def bound_structural_whitespace(skeleton: str, most: int = MAX_STRUCTURAL_WS) -> str:
    """The skeleton as the decoder writes it: ``_WS: /[class]+/`` becomes ``/[class]{1,most}/``.

    A constrained model cannot then spend its budget on blanks around ``<think>`` / ``<answer>``
    (unbounded, one row wrote 1,246 characters there). Other ``_WS`` definitions are kept as written."""
    return _WS_DEFINITION.sub(lambda m: f"{m.group(1)}{m.group(2)}{{1,{most}}}{m.group(3)}", skeleton)


@lru_cache(maxsize=64)
def _composed_cached(dialect: str, frame: str | None, types: tuple[str, ...] | None) -> ComposedGrammar:
    from groundkit.registry import get_registry

    reg = get_registry()
    d = reg.dialect(dialect)
    f = reg.frame(frame or d.default_frame)
    if types is None:
        chosen = tuple(reg.grounding_type(n) for n in supported_types(dialect))
    else:
        chosen = tuple(reg.grounding_type(n) for n in types)
        missing = [t.name for t in chosen if t.syntax(dialect) is None]
        if missing:
            raise GrammarError(
                f"dialect {dialect!r} has no syntax for grounding type(s) {', '.join(missing)}; "
                f"it supports: {', '.join(supported_types(dialect))}"
            )
    return compose(d, f, chosen)


def get_grammar(dialect: str = "groundkit", frame: str | None = None, types: tuple[str, ...] | list[str] | None = None) -> ComposedGrammar:
    """The composed grammar for a dialect (by name), frame spec and grounding types.

    ``types=None`` enables every registered type that has a syntax for the dialect;
    ``frame=None`` uses the dialect's default frame.
    """
    return _composed_cached(dialect, frame, tuple(types) if types is not None else None)


def supported_types(dialect: str) -> list[str]:
    """Names of registered grounding types that can be written in ``dialect``."""
    from groundkit.registry import get_registry

    reg = get_registry()
    reg.dialect(dialect)
    return [n for n in reg.grounding_types.names() if reg.grounding_type(n).syntax(dialect) is not None]


def clear_caches() -> None:
    _composed_cached.cache_clear()
    _build_lark.cache_clear()


on_registry_change(clear_caches)
