"""Exports of a composed grammar for engines groundkit does not own.

All three are derived from the composed grammar by walking Lark's rule trees (as
:mod:`groundkit.text.regex` does), so a third-party grounding type's rule is exported
with no change here:

- :func:`export_regex`: one regex for the whole grammar (vLLM structured outputs, TRL's
  ``vllm_structured_outputs_regex``);
- :func:`export_lark`: llguidance's Lark dialect;
- :func:`export_ebnf`: EBNF / GBNF for xgrammar (``root ::= ...``).

The frame's ``NUM`` becomes a bounded number (``0..1000`` without leading zeros for
``rel-1000``, ``0..100`` with up to two decimals for ``percent-100``, ``0..1`` with up to
four for ``unit``). What one grammar for a batch cannot express (the decoder enforces it,
the parser checks it): box ordering ``x1 < x2``, ``y1 < y2`` (a regex has no arithmetic
between two numbers); per-axis and per-row bounds of per-image frames (a batch-wide export
can only use the largest bound, so those frames need ``image_size`` or they raise
:class:`~groundkit.decoding.number_regex.PerImageBoundError`); plugin readers' checks (e.g.
molmo's ``x1 y1 x2 y2`` index order); and budget-aware closing (a grammar has no notion of
the remaining token budget).
"""

from __future__ import annotations

import ast
from collections.abc import Collection, Sequence

import regex
from lark import Token, Tree
from lark.load_grammar import GrammarBuilder

from groundkit.decoding.number_regex import PerImageBoundError, num_regex
from groundkit.decoding.regex_ebnf import RegexToEbnf, ebnf_string
from groundkit.errors import GrammarError
from groundkit.frames import ImageSize
from groundkit.text.grammar import ComposedGrammar
from groundkit.text.regex import GrammarRegex, RecursiveGrammarError

Sizes = ImageSize | Sequence[ImageSize | None] | None

__all__ = ["PerImageBoundError", "RecursiveGrammarError", "export_ebnf", "export_lark", "export_regex", "free_text_terminals"]


class _BoundedRegex(GrammarRegex):
    """The grammar regex with the frame's ``NUM`` replaced by a bounded number."""

    def __init__(self, grammar: ComposedGrammar, num: str):
        super().__init__(grammar, capture=False)
        self.num = num

    def terminal(self, name: str) -> str:
        return f"(?:{self.num})" if name == "NUM" else super().terminal(name)


def export_regex(grammar: ComposedGrammar, image_size: Sizes = None, bounded: bool = True) -> str:
    """One regex (Python / Rust syntax, no captures) matching the whole grammar.

    Numbers are bounded by the frame (``bounded=False`` keeps the plain number syntax).
    Per-image frames need ``image_size`` (one size or the batch's sizes; the largest
    extent over images and axes is used) and raise ``PerImageBoundError`` without it.
    Box ordering (``x1 < x2``) is not expressible in a regex and is not enforced.
    """
    return _BoundedRegex(grammar, num_regex(grammar.frame, image_size, bounded)).rule("start")


class _Walker:
    """Shared walk over the composed grammar's rule trees; subclasses choose the syntax."""

    def __init__(self, grammar: ComposedGrammar, num: str):
        builder = GrammarBuilder()
        builder.load_grammar(grammar.text, "<composed>")
        self.rules = {name: tree for name, _params, tree, _opts in builder.build().rule_defs}
        self.lark = grammar.lark
        self.num = num
        self.rule_order: list[str] = []
        self.terminal_order: list[str] = []
        self._stack: list[str] = []

    def collect(self, name: str = "start") -> None:
        """Record the rules and terminals reachable from ``name`` (recursion is allowed: both peers take CFGs)."""
        if name in self.rule_order:
            return
        self.rule_order.append(name)
        for sub in self.rules[name].iter_subtrees():
            if sub.data != "value":
                continue
            child = sub.children[0]
            kind = type(child).__name__
            if kind == "NonTerminal":
                self.collect(child.name)
            elif kind == "Terminal" and child.name not in self.terminal_order:
                self.terminal_order.append(child.name)

    def pattern(self, terminal: str) -> str:
        if terminal == "NUM":
            return self.num
        return self.lark.get_terminal(terminal).pattern.to_regexp()

    # --- syntax hooks --------------------------------------------------------------------
    def literal(self, text: str) -> str:
        raise NotImplementedError

    def rule_name(self, name: str) -> str:
        return name

    def terminal_name(self, name: str) -> str:
        return name

    def node(self, tree: Tree | Token) -> str:
        if isinstance(tree, Token):
            if tree.type == "STRING":
                return self.literal(ast.literal_eval(tree.value))
            raise GrammarError(f"inline regexp {tree.value} in a rule: name it as a terminal")
        kind = tree.data
        if kind == "expansions":
            alts = [self.node(c) for c in tree.children]
            return alts[0] if len(alts) == 1 else "(" + " | ".join(alts) + ")"
        if kind == "expansion":
            parts = [self.node(c) for c in tree.children]
            return parts[0] if len(parts) == 1 else "(" + " ".join(parts) + ")"
        if kind == "expr":
            inner, op = self.node(tree.children[0]), str(tree.children[1])
            if op in ("?", "*", "+"):
                return inner + op
            lo, hi = (tree.children[2], tree.children[3]) if len(tree.children) > 3 else (tree.children[2],) * 2
            return f"{inner}{{{lo},{hi}}}"
        if kind in ("value", "literal", "alias"):
            child = tree.children[0]
            name = type(child).__name__
            if name == "Terminal":
                return self.terminal_name(child.name)
            if name == "NonTerminal":
                return self.rule_name(child.name)
            return self.node(child)
        raise GrammarError(f"grammar construct {kind!r} cannot be exported")


def _unique_names(names: list[str], convert) -> dict[str, str]:  # noqa: ANN001
    out: dict[str, str] = {}
    for n in names:
        base = candidate = convert(n)
        i = 1
        while candidate in out.values():
            candidate, i = f"{base}_{i}", i + 1
        out[n] = candidate
    return out


class _LarkWalker(_Walker):
    def __init__(self, grammar: ComposedGrammar, num: str, special_tokens: Collection[str]):
        super().__init__(grammar, num)
        self.special = set(special_tokens)
        self.collect()
        self.names = _unique_names(self.terminal_order, lambda n: n.lstrip("_") or "T")

    def literal(self, text: str) -> str:
        if text in self.special:
            if not (text.startswith("<") and text.endswith(">")):
                raise GrammarError(f"special token {text!r} must look like <...> to be referenced in llguidance")
            return text
        return ebnf_string(text)

    def terminal_name(self, name: str) -> str:
        return self.names[name]


def export_lark(
    grammar: ComposedGrammar, image_size: Sizes = None, bounded: bool = True, special_tokens: Collection[str] = ()
) -> str:
    """The grammar in llguidance's Lark dialect (starts with ``%llguidance {}``).

    Every terminal is one regex lexeme (llguidance compiles uppercase names into its lexer),
    so free text (``TEXT``: ``/[^<]+/``) is a single greedy lexeme that ends at ``<``:
    the token mask inside text is computed by the lexer, not by the Earley parser.
    Literals listed in ``special_tokens`` (e.g. ``<|box_start|>`` of a Qwen tokenizer)
    are referenced as special tokens instead of spelt as text. Bounds as in :func:`export_regex`.
    """
    w = _LarkWalker(grammar, num_regex(grammar.frame, image_size, bounded), special_tokens)
    lines = ["%llguidance {}", f"// groundkit export: dialect={grammar.dialect.name} frame={grammar.frame.name} "
             f"types={','.join(grammar.type_names)}"]
    lines += [f"{name}: {w.node(w.rules[name])}" for name in w.rule_order]
    lines += [f"{w.names[t]}: /{_lark_regex(w.pattern(t))}/" for t in w.terminal_order]
    return "\n".join(lines) + "\n"


_CONTROL = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\f": "\\f", "\v": "\\v"}


def _lark_regex(pattern: str) -> str:
    """A regex inside ``/.../``: escape unescaped slashes; llguidance reads Rust syntax (same here)."""
    regex.compile(pattern)  # a broken terminal fails here, not in the peer
    out, escaped = [], False
    for ch in pattern:
        if ch in _CONTROL:
            out.append(_CONTROL[ch])
            escaped = False
            continue
        out.append("\\/" if ch == "/" and not escaped else ch)
        escaped = ch == "\\" and not escaped
    return "".join(out)


class _EbnfWalker(_Walker):
    def __init__(self, grammar: ComposedGrammar, num: str):
        super().__init__(grammar, num)
        self.collect()
        self.rule_names = _unique_names(self.rule_order, lambda n: "root" if n == "start" else n.replace("_", "-"))
        taken = set(self.rule_names.values())
        self.names = _unique_names(self.terminal_order, lambda n: "t-" + n.lstrip("_").lower().replace("_", "-"))
        if taken & set(self.names.values()):
            raise GrammarError(f"rule and terminal names collide in the EBNF export: {sorted(taken & set(self.names.values()))}")

    def literal(self, text: str) -> str:
        return ebnf_string(text)

    def rule_name(self, name: str) -> str:
        return self.rule_names[name]

    def terminal_name(self, name: str) -> str:
        return self.names[name]


def export_ebnf(grammar: ComposedGrammar, image_size: Sizes = None, bounded: bool = True) -> str:
    """The grammar as EBNF / GBNF for xgrammar (``root ::= ...``; terminals become ``t-name`` rules).

    Terminal regexes are rewritten as EBNF expressions (character classes, repetitions,
    alternatives). Bounds as in :func:`export_regex`.
    """
    w = _EbnfWalker(grammar, num_regex(grammar.frame, image_size, bounded))
    conv = RegexToEbnf()
    lines = [f"# groundkit export: dialect={grammar.dialect.name} frame={grammar.frame.name} types={','.join(grammar.type_names)}"]
    lines += [f"{w.rule_names[name]} ::= {w.node(w.rules[name])}" for name in w.rule_order]
    lines += [f"{w.names[t]} ::= {conv.convert(w.pattern(t))}" for t in w.terminal_order]
    return "\n".join(lines) + "\n"


def free_text_terminals(grammar: ComposedGrammar) -> dict[str, str]:
    """Terminals that match free text (an unbounded negated character class, e.g. ``TEXT: /[^<]+/``).

    Engines with a token-class optimisation (llguidance's "slices") use these regexes so that
    the mask inside free text is one precomputed class, not a walk over the vocabulary.
    """
    out: dict[str, str] = {}
    for t in grammar.lark.terminals:
        pattern = t.pattern.to_regexp()
        if regex.fullmatch(r"\[\^[^\]]+\][+*]", pattern):
            out[t.name] = pattern
    return out
