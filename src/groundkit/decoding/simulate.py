"""Token-level transitions: every token's bytes run from every DFA state, vectorised.

The first byte is looked up for all (state, token) pairs at once; only the pairs still
alive go on, so the cost is the number of (state, token prefix) pairs that survive,
which is small except in free-text states.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from groundkit.decoding.automaton import ByteDFA


@dataclass
class Transitions:
    """Alive (state, token) pairs: the state after the token, and whether it touched a number."""

    state: np.ndarray
    token: np.ndarray
    next: np.ndarray
    touches_number: np.ndarray


def pack_tokens(tokens: list[bytes | None]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(ids of usable tokens, their lengths, offsets into ``buffer``, ``buffer``)."""
    ids = np.array([i for i, t in enumerate(tokens) if t], dtype=np.int64)
    chunks = [tokens[i] for i in ids]
    lengths = np.fromiter((len(c) for c in chunks), dtype=np.int64, count=len(chunks))  # type: ignore[arg-type]
    offsets = np.zeros(len(chunks), dtype=np.int64)
    np.cumsum(lengths[:-1], out=offsets[1:])
    buffer = np.frombuffer(b"".join(chunks), dtype=np.uint8)  # type: ignore[arg-type]
    return ids, lengths, offsets, buffer


def token_transitions(dfa: ByteDFA, tokens: list[bytes | None], states: np.ndarray | None = None) -> Transitions:
    ids, lengths, offsets, buffer = pack_tokens(tokens)
    in_number = dfa.slot >= 0
    states = np.arange(1, dfa.n_states) if states is None else states
    first = buffer[offsets]
    out: list[tuple[np.ndarray, ...]] = []
    for chunk in np.array_split(states, max(1, len(states) // 16)):
        cur2d = dfa.delta[chunk][:, first]  # (chunk, tokens)
        si, ti = np.nonzero(cur2d != dfa.dead)
        s = chunk[si]
        cur = cur2d[si, ti]
        touch = in_number[s] | in_number[cur]
        pos = 1
        while len(ti):
            done = lengths[ti] <= pos
            if done.any():
                out.append((s[done], ids[ti[done]], cur[done], touch[done]))
                keep = ~done
                s, ti, cur, touch = s[keep], ti[keep], cur[keep], touch[keep]
            if not len(ti):
                break
            cur = dfa.delta[cur, buffer[offsets[ti] + pos]]
            alive = cur != dfa.dead
            s, ti, cur, touch = s[alive], ti[alive], cur[alive], touch[alive] | in_number[cur[alive]]
            pos += 1
    if not out:
        empty = np.zeros(0, np.int64)
        return Transitions(empty, empty, empty, np.zeros(0, bool))
    cat = [np.concatenate(parts) for parts in zip(*out)]
    return Transitions(cat[0].astype(np.int64), cat[1], cat[2].astype(np.int64), cat[3])
