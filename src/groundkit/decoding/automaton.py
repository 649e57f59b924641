"""The composed grammar as one minimal byte-level DFA, with the written numbers marked.

Rules are inlined (the grammar class is regular); every ``NUM`` inside a grounding type's
rule marks its states with a :class:`NumberTag` (ordinal slot, axis, the slot it must
exceed per the type's ``ordering``). Value constraints are not part of the DFA: the runtime
checks them per row with tensor arithmetic, so per-image bounds need no recompile.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

import numpy as np
from lark import Token, Tree
from lark.load_grammar import GrammarBuilder

from groundkit.decoding.nfa import NFA, NumberTag
from groundkit.errors import GrammarError
from groundkit.text.grammar import ComposedGrammar

NUMBER_TERMINAL = "NUM"
NUMBER_BYTES = set(b"0123456789.")


@dataclass
class ByteDFA:
    """Minimal DFA over bytes. Row ``dead`` of ``delta`` is the absorbing reject state.

    Per state: ``accept``; ``slot``/``axis``/``above`` of the number being written (-1 when
    not inside a number), ``capped`` (a later value must exceed it, so it stays below the
    bound) and ``in_frac`` (the number already has its decimal point).
    """

    delta: np.ndarray
    start: int
    dead: int
    accept: np.ndarray
    slot: np.ndarray
    axis: np.ndarray
    above: np.ndarray
    capped: np.ndarray
    in_frac: np.ndarray

    @property
    def n_states(self) -> int:
        return int(self.delta.shape[0])

    def run(self, data: bytes, state: int | None = None) -> int:
        s = self.start if state is None else state
        for b in data:
            s = int(self.delta[s, b])
        return s

    def accepts(self, data: bytes) -> bool:
        return bool(self.accept[self.run(data)])


class _GrammarNFA:
    """Builds the NFA of ``start`` by inlining rules; tags numbers inside grounding rules."""

    def __init__(self, grammar: ComposedGrammar):
        builder = GrammarBuilder()
        builder.load_grammar(grammar.text, "<composed>")
        self.rules = {name: tree for name, _p, tree, _o in builder.build().rule_defs}
        self.lark = grammar.lark
        self.types = {t.name: t for t in grammar.types}
        self.nfa = NFA()
        self.stack: list[str] = []
        self.type_name: str | None = None
        self.ordinal = 0
        self.loop_depth = 0

    def rule(self, name: str) -> tuple[int, int]:
        if name in self.stack:
            raise GrammarError(f"rule {name!r} is recursive ({' -> '.join(self.stack + [name])}); the decoder needs a regular grammar")
        outer = (self.type_name, self.ordinal, self.loop_depth)
        if name in self.types:
            self.type_name, self.ordinal, self.loop_depth = name, 0, 0
        self.stack.append(name)
        try:
            return self.node(self.rules[name])
        finally:
            self.stack.pop()
            if name in self.types:
                self.type_name, self.ordinal, self.loop_depth = outer

    def number_tag(self) -> NumberTag | None:
        if self.type_name is None:
            return None
        t = self.types[self.type_name]
        k = self.ordinal
        self.ordinal += 1
        above = [j for i, j in t.ordering if i == k]
        if any(i == k or j == k for i, j in t.ordering) and self.loop_depth:
            raise GrammarError(f"grounding type {t.name!r}: an ordered value (ordering {t.ordering}) is inside a repetition")
        return NumberTag(slot=k, axis=k % 2, above=above[0] if above else -1, capped=any(j == k for _i, j in t.ordering))

    def terminal(self, name: str) -> tuple[int, int]:
        pattern = self.lark.get_terminal(name).pattern
        if pattern.flags:
            raise GrammarError(f"terminal {name} uses regex flags {sorted(pattern.flags)}; the decoder does not support them")
        tag = self.number_tag() if name == NUMBER_TERMINAL else None
        if type(pattern).__name__ == "PatternStr":
            return self.nfa.literal(pattern.value.encode("utf-8"), tag)
        return self.nfa.regex(pattern.to_regexp(), tag)

    def node(self, tree: Tree | Token) -> tuple[int, int]:
        nfa = self.nfa
        if isinstance(tree, Token):
            if tree.type == "STRING":
                return nfa.literal(ast.literal_eval(tree.value).encode("utf-8"))
            raise GrammarError(f"grammar construct {tree!r} has no automaton form (name inline regexps as terminals)")
        kind = tree.data
        if kind == "expansions":
            start, end = nfa.state(), nfa.state()
            for child in tree.children:
                a, b = self.node(child)
                nfa.epsilon(start, a)
                nfa.epsilon(b, end)
            return start, end
        if kind == "expansion":
            start = cur = nfa.state()
            for child in tree.children:
                a, b = self.node(child)
                nfa.epsilon(cur, a)
                cur = b
            return start, cur
        if kind == "expr":
            return self.expr(tree)
        if kind == "maybe":
            a, b = self.node(tree.children[0])
            nfa.epsilon(a, b)
            return a, b
        if kind in ("value", "literal", "alias"):
            child = tree.children[0]
            if type(child).__name__ == "Terminal":
                return self.terminal(child.name)
            if type(child).__name__ == "NonTerminal":
                return self.rule(child.name)
            return self.node(child)
        raise GrammarError(f"grammar construct {kind!r} has no automaton form")

    def expr(self, tree: Tree) -> tuple[int, int]:
        nfa = self.nfa
        inner, op = tree.children[0], str(tree.children[1])
        if op == "?":
            a, b = self.node(inner)
            nfa.epsilon(a, b)
            return a, b
        if op in ("*", "+"):
            entry, end = nfa.state(), nfa.state()
            loop_from = entry
            if op == "+":  # one copy, then the loop
                a, b = self.node(inner)
                nfa.epsilon(entry, a)
                loop_from = b
            self.loop_depth += 1
            a, b = self.node(inner)
            self.loop_depth -= 1
            nfa.epsilon(loop_from, a)
            nfa.epsilon(b, a)
            nfa.epsilon(b, end)
            nfa.epsilon(loop_from, end)
            return entry, end
        lo, hi = int(tree.children[2]), int(tree.children[-1])
        start = cur = nfa.state()
        end = nfa.state()
        for i in range(hi):
            if i >= lo:
                nfa.epsilon(cur, end)
            a, b = self.node(inner)
            nfa.epsilon(cur, a)
            cur = b
        nfa.epsilon(cur, end)
        return start, end


def _closure(nfa: NFA, states: frozenset[int], memo: dict[frozenset[int], frozenset[int]]) -> frozenset[int]:
    got = memo.get(states)
    if got is not None:
        return got
    seen, todo = set(states), list(states)
    while todo:
        for t in nfa.eps[todo.pop()]:
            if t not in seen:
                seen.add(t)
                todo.append(t)
    memo[states] = result = frozenset(seen)
    return result


def _byte_classes(nfa: NFA) -> list[int]:
    """Partition of the 256 bytes into classes no edge distinguishes (256-bit masks)."""
    classes = [(1 << 256) - 1]
    for bits in {bits for edges in nfa.edges for bits, _ in edges}:
        classes = [part for c in classes for part in (c & bits, c & ~bits) if part]
    return classes


def _key(tag: NumberTag | None) -> tuple[int, int, int] | None:
    return None if tag is None else (tag.slot, tag.axis, tag.above)


def _determinize(nfa: NFA, start: int, final: int) -> ByteDFA:
    memo: dict[frozenset[int], frozenset[int]] = {}
    classes = _byte_classes(nfa)
    reps = [(c & -c).bit_length() - 1 for c in classes]
    class_bytes = [[b for b in range(256) if c >> b & 1] for c in classes]
    first = _closure(nfa, frozenset([start]), memo)
    index: dict[frozenset[int], int] = {frozenset(): 0, first: 1}
    order = [frozenset(), first]
    rows: list[list[int]] = [[0] * len(classes)]
    i = 1
    while i < len(order):
        current = order[i]
        row = []
        for rep in reps:
            direct = frozenset(b for s in current for bits, b in nfa.edges[s] if bits >> rep & 1)
            tags = {_key(nfa.tags[b]) for b in direct}
            if len(tags) > 1:
                raise GrammarError(f"ambiguous grammar: byte {bytes([rep])!r} can be part of a number and of other text at once")
            target = _closure(nfa, direct, memo) if direct else frozenset()
            if target not in index:
                index[target] = len(order)
                order.append(target)
            row.append(index[target])
        rows.append(row)
        i += 1
    n = len(order)
    delta = np.zeros((n, 256), dtype=np.int32)
    for ci, bytes_ in enumerate(class_bytes):
        delta[:, bytes_] = np.array([r[ci] for r in rows], dtype=np.int32)[:, None]
    accept = np.array([final in s for s in order])
    slot = np.full(n, -1, np.int32)
    axis = np.full(n, -1, np.int32)
    above = np.full(n, -1, np.int32)
    capped = np.zeros(n, bool)
    for k, members in enumerate(order):
        tags = [nfa.tags[m] for m in members if nfa.tags[m] is not None]
        if len({_key(t) for t in tags}) > 1:
            raise GrammarError(f"ambiguous grammar: one position can be inside different numbers {sorted(map(str, set(tags)))}")
        if tags:
            slot[k], axis[k], above[k] = tags[0].slot, tags[0].axis, tags[0].above
            capped[k] = any(t.capped for t in tags)  # shared by a type whose later value must exceed it
    dfa = ByteDFA(delta, 1, 0, accept, slot, axis, above, capped, np.zeros(n, bool))
    return dfa


def _mark_fraction(dfa: ByteDFA) -> None:
    """``in_frac``: the number written so far has its decimal point; checks number bytes."""
    n = dfa.n_states
    seen = np.zeros(n, bool)
    todo = [dfa.start]
    seen[dfa.start] = True
    while todo:
        s = todo.pop()
        for b in range(256):
            t = int(dfa.delta[s, b])
            if t == dfa.dead:
                continue
            if dfa.slot[t] >= 0:
                if b not in NUMBER_BYTES:
                    raise GrammarError(f"numbers may only contain digits and '.', the grammar allows {bytes([b])!r} inside one")
                frac = (dfa.in_frac[s] if dfa.slot[s] == dfa.slot[t] and dfa.slot[s] >= 0 else False) or b == ord(".")
                if seen[t] and dfa.in_frac[t] != frac:
                    raise GrammarError("ambiguous number syntax: a state is both before and after the decimal point")
                dfa.in_frac[t] = frac
            if not seen[t]:
                seen[t] = True
                todo.append(t)


def _minimize(dfa: ByteDFA) -> ByteDFA:
    """Moore partition refinement; unreachable and dead-end states collapse into the dead state."""
    n = dfa.n_states
    # co-reachability: states from which an accepting state can be reached
    live = dfa.accept.copy()
    while True:
        grown = live | live[dfa.delta].any(axis=1)
        if (grown == live).all():
            break
        live = grown
    delta = np.where(live[dfa.delta], dfa.delta, dfa.dead)
    keys = np.stack([dfa.accept, dfa.slot, dfa.axis, dfa.above, dfa.capped, dfa.in_frac, ~live]).T
    _, part = np.unique(keys, axis=0, return_inverse=True)
    part = part.ravel()
    part[~live] = part[dfa.dead]
    while True:
        sig = np.concatenate([part[:, None], part[delta]], axis=1)
        _, new = np.unique(sig, axis=0, return_inverse=True)
        new = new.ravel()
        if len(np.unique(new)) == len(np.unique(part)):
            break
        part = new
    # renumber: dead first, start second, then the rest in first-seen order
    order = [int(part[dfa.dead]), int(part[dfa.start])]
    for p in part:
        if int(p) not in order:
            order.append(int(p))
    remap = np.zeros(part.max() + 1, np.int32)
    remap[order] = np.arange(len(order), dtype=np.int32)
    reps = np.zeros(len(order), np.int64)
    for s in range(n - 1, -1, -1):
        reps[remap[part[s]]] = s
    reps[0] = dfa.dead
    new_delta = remap[part[delta[reps]]]
    pick = lambda a: a[reps]  # noqa: E731
    return ByteDFA(new_delta.astype(np.int32), 1, 0, pick(dfa.accept) & (np.arange(len(order)) != 0), pick(dfa.slot),
                   pick(dfa.axis), pick(dfa.above), pick(dfa.capped), pick(dfa.in_frac))


def build_byte_dfa(grammar: ComposedGrammar) -> ByteDFA:
    """The minimal byte DFA of a composed grammar (numbers tagged, bounds left to the runtime)."""
    builder = _GrammarNFA(grammar)
    start, final = builder.rule("start")
    dfa = _determinize(builder.nfa, start, final)
    _mark_fraction(dfa)
    return _minimize(dfa)
