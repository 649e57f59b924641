"""Reward specs: ``"format,answer,point_f1(max_distance=0.1):0.5"`` -> terms with parameters and weights.

An item is ``name``, ``name:weight``, ``name(param=value, ...)`` or ``name(param=value, ...):weight``.
Parameter values are Python literals (numbers, text, tuples, lists, True/False/None) read with
:func:`ast.literal_eval` (never evaluated as code) and checked against the term's dataclass
fields; a bad item raises a :class:`GroundkitError` naming the item, the term and the parameter.
"""

from __future__ import annotations

import ast
import dataclasses
import math
import numbers
import types as pytypes
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from groundkit.errors import GroundkitError
from groundkit.interfaces.reward import RewardTerm

_OPEN, _CLOSE = "([{", ")]}"


@dataclass(frozen=True)
class RewardItem:
    """One parsed spec item: a term name, its parameters and its weight."""

    name: str
    params: dict[str, Any] = field(default_factory=dict)
    weight: float = 1.0


def _depths(text: str):
    """``(position, char, depth)`` for each character outside quotes (depth after the char)."""
    depth, quote, escaped = 0, "", False
    for pos, ch in enumerate(text):
        if quote:
            escaped, quote = (not escaped and ch == "\\"), ("" if ch == quote and not escaped else quote)
            continue
        if ch in "'\"":
            quote = ch
            continue
        depth += (ch in _OPEN) - (ch in _CLOSE)
        yield pos, ch, depth
    if quote:
        raise GroundkitError(f"reward spec {text!r}: unclosed quote")


def split_reward_spec(spec: str) -> list[str]:
    """The comma-separated items of a spec, ignoring commas inside brackets or quotes."""
    items, start, depth = [], 0, 0
    for pos, ch, depth in _depths(spec):
        if depth < 0:
            raise GroundkitError(f"reward spec {spec!r}: unmatched {ch!r} at column {pos + 1}")
        if ch == "," and depth == 0:
            items.append(spec[start:pos])
            start = pos + 1
    if depth:
        raise GroundkitError(f"reward spec {spec!r}: unclosed bracket")
    items.append(spec[start:])
    return [s.strip() for s in items if s.strip()]


def check_weight(weight: Any, where: str) -> float:
    """A finite number as a float, else a :class:`GroundkitError` naming ``where``."""
    if isinstance(weight, bool) or not isinstance(weight, numbers.Real) or not math.isfinite(weight):
        raise GroundkitError(f"{where}: the weight must be a finite number, got {weight!r}")
    return float(weight)


def parse_reward_item(item: str) -> RewardItem:
    """``name(param=value, ...):weight`` (parameters and weight optional) -> a :class:`RewardItem`."""
    item = item.strip()
    head, params_text, rest = item, "", ""
    if "(" in item:
        head, _, tail = item.partition("(")
        for pos, _ch, depth in _depths("(" + tail):  # the matching ")"
            if depth == 0:
                params_text, rest = tail[: pos - 1], tail[pos:].strip()
                break
        else:
            raise GroundkitError(f"reward spec item {item!r}: unclosed '('")
        if rest and not rest.startswith(":"):
            raise GroundkitError(f"reward spec item {item!r}: expected ':weight' after the parameters, got {rest!r}")
    else:
        head, colon, weight_text = item.partition(":")
        rest = colon + weight_text
    name = head.strip()
    if not name.isidentifier():
        raise GroundkitError(f"reward spec item {item!r}: {name!r} is not a reward term name")
    weight = 1.0
    if rest:
        text = rest[1:].strip()
        try:
            weight = float(text)
        except ValueError:
            raise GroundkitError(f"reward weight must be a number, got {text!r} in {item!r}") from None
        check_weight(weight, f"reward term {name!r}")
    return RewardItem(name, _parse_params(name, params_text, item) if params_text.strip() else {}, weight)


def _parse_params(name: str, text: str, item: str) -> dict[str, Any]:
    try:
        call = ast.parse(f"_({text})", mode="eval").body
    except SyntaxError as exc:
        raise GroundkitError(f"reward term {name!r}: cannot read the parameters ({text}) in {item!r}: {exc.msg}") from None
    assert isinstance(call, ast.Call)
    if call.args or any(k.arg is None for k in call.keywords):
        raise GroundkitError(f"reward term {name!r}: parameters are written name=value, got ({text}) in {item!r}")
    params: dict[str, Any] = {}
    for kw in call.keywords:
        try:
            params[kw.arg] = ast.literal_eval(kw.value)  # type: ignore[index]
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            raise GroundkitError(
                f"reward term {name!r}: parameter {kw.arg!r} must be a Python literal (number, 'text', tuple, list, "
                f"True/False/None), got {ast.get_source_segment(f'_({text})', kw.value)!r}"
            ) from None
    return params


def parse_reward_spec(spec: str | Any) -> list[RewardItem]:
    """A spec string, a list of item strings, or a mapping ``{name: weight | {weight: w, param: value}}``."""
    if isinstance(spec, str):
        return [parse_reward_item(s) for s in split_reward_spec(spec)]
    if isinstance(spec, Mapping):
        out = []
        for name, value in spec.items():
            if not isinstance(name, str) or not name.isidentifier():
                raise GroundkitError(f"reward term names are text, got {name!r}")
            if isinstance(value, Mapping):
                params = {str(k): v for k, v in value.items() if k != "weight"}
                out.append(RewardItem(name, params, check_weight(value.get("weight", 1.0), f"reward term {name!r}")))
            else:
                out.append(RewardItem(name, {}, check_weight(value, f"reward term {name!r}")))
        return out
    items: list[RewardItem] = []
    for entry in spec:
        if isinstance(entry, RewardItem):
            items.append(entry)
        elif isinstance(entry, str):
            items += [parse_reward_item(s) for s in split_reward_spec(entry)]
        else:
            raise GroundkitError(f"a reward spec item is text such as 'point_f1(max_distance=0.1):0.5', got {entry!r}")
    return items


def term_parameters(term: RewardTerm) -> dict[str, Any]:
    """The term's parameters (dataclass fields) and their current values."""
    if not dataclasses.is_dataclass(term):
        return {}
    return {f.name: getattr(term, f.name) for f in dataclasses.fields(term) if f.init}


def configure_term(term: RewardTerm, params: Mapping[str, Any]) -> RewardTerm:
    """``term`` with ``params`` checked against its fields (name and type) and applied."""
    if not params:
        return term
    known = term_parameters(term)
    try:
        hints = typing.get_type_hints(type(term))
    except Exception:  # error boundary: a plugin's annotations may not resolve; then only names are checked
        hints = {}
    values = {}
    for key, value in params.items():
        if key not in known:
            names = ", ".join(sorted(known)) or "none"
            raise GroundkitError(f"reward term {term.name!r} has no parameter {key!r}; known: {names}")
        values[key] = _coerce(term.name, key, value, hints.get(key), known[key])
    return term.with_params(**values)


def _coerce(term: str, key: str, value: Any, hint: Any, current: Any) -> Any:
    """``value`` as the field's type (int -> float, list -> tuple), or an error naming the parameter."""
    where = f"reward term {term!r}: parameter {key!r}"
    if hint is None:
        hint = type(current)
    origin = typing.get_origin(hint)
    if origin in (typing.Union, pytypes.UnionType):
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return None
        for arg in (a for a in args if a is not type(None)):
            try:
                return _coerce(term, key, value, arg, current)
            except GroundkitError:
                continue
        raise GroundkitError(f"{where} must be {hint}, got {value!r}")
    if origin is tuple or hint is tuple:
        if not isinstance(value, (tuple, list)):
            raise GroundkitError(f"{where} must be a tuple such as ('a', 'b'), got {value!r}")
        inner = typing.get_args(hint)
        if len(inner) == 2 and inner[1] is Ellipsis:
            return tuple(_coerce(term, key, v, inner[0], None) for v in value)
        return tuple(value)
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise GroundkitError(f"{where} must be a number, got {value!r}")
        return float(value)
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise GroundkitError(f"{where} must be an integer, got {value!r}")
        return value
    if hint in (str, bool) and not isinstance(value, hint):
        raise GroundkitError(f"{where} must be {'text' if hint is str else 'True or False'}, got {value!r}")
    if origin is None and isinstance(hint, type) and not isinstance(value, hint):
        raise GroundkitError(f"{where} must be a {hint.__name__} (not settable from a spec), got {value!r}")
    return value


def build_reward_terms(spec: Any, registry: Any = None) -> list[tuple[RewardTerm, float]]:
    """``(term, weight)`` pairs for a spec (see :func:`parse_reward_spec`), parameters applied."""
    if registry is None:
        from groundkit.registry import get_registry

        registry = get_registry()
    return [(configure_term(registry.reward_term(it.name), it.params), it.weight) for it in parse_reward_spec(spec)]


def format_reward_item(item: RewardItem) -> str:
    """The spec text of an item (``point_f1(max_distance=0.1):0.5``)."""
    params = ", ".join(f"{k}={v!r}" for k, v in item.params.items())
    return f"{item.name}({params}):{item.weight:g}" if params else f"{item.name}:{item.weight:g}"
