"""What a token does to the number being written: the descriptor of one (state, token) pair.

A token may continue the current number (and end it), and may start the next one. Tokens
that would write a whole number inside themselves, or start a number whose lower bound is
the number they end, are left out of the automaton (no tokenizer needs them to write any
valid text: single digits always exist).
"""

from __future__ import annotations

from dataclasses import dataclass

from groundkit.decoding.automaton import ByteDFA

MAX_NUMBER_DIGITS = 12


@dataclass
class NumberStep:
    """Effect of one token on the number registers (see :mod:`groundkit.decoding.runtime`)."""

    c_ilen: int = 0
    c_ival: int = 0
    c_point: int = 0
    c_flen: int = 0
    c_fval: int = 0
    ends: int = 0
    starts: int = 0
    s_ilen: int = 0
    s_ival: int = 0
    s_point: int = 0
    s_flen: int = 0
    s_fval: int = 0
    s_axis: int = 0
    s_above: int = -1
    s_capped: int = 0
    s_chars: int = 0


def _split(chars: bytes, in_frac: bool) -> tuple[int, int, int, int, int] | None:
    """(ilen, ival, point, flen, fval) of a run of number characters."""
    if in_frac:
        return (0, 0, 0, len(chars), int(chars)) if chars else (0, 0, 0, 0, 0)
    whole, point, frac = chars.partition(b".")
    if len(whole) > MAX_NUMBER_DIGITS or len(frac) > MAX_NUMBER_DIGITS:
        return None
    return len(whole), int(whole) if whole else 0, int(bool(point)), len(frac), int(frac) if frac else 0


def describe(dfa: ByteDFA, state: int, token: bytes) -> NumberStep | None:
    """The token's number effect from ``state``; None when the automaton leaves it out."""
    cur = state
    segments: list[list] = []  # [slot_state, chars, ended, continued_from_start]
    if dfa.slot[cur] >= 0:
        segments.append([cur, b"", False, True])
    for b in token:
        nxt = int(dfa.delta[cur, b])
        was, now = dfa.slot[cur] >= 0, dfa.slot[nxt] >= 0
        if was and (not now or dfa.slot[nxt] != dfa.slot[cur]):
            segments[-1][2] = True
        if now:
            if not was or dfa.slot[nxt] != dfa.slot[cur]:
                segments.append([nxt, b"", False, False])
            segments[-1][1] += bytes([b])
            segments[-1][0] = nxt
        cur = nxt
    step = NumberStep()
    cont = segments.pop(0) if segments and segments[0][3] else None
    if any(seg[2] for seg in segments):
        return None  # a whole number inside one token
    if cont is not None:
        split = _split(cont[1], bool(dfa.in_frac[state]))
        if split is None:
            return None
        step.c_ilen, step.c_ival, step.c_point, step.c_flen, step.c_fval = split
        step.ends = int(cont[2])
    if segments:
        (last_state, chars, _ended, _c) = segments[-1]
        split = _split(chars, False)
        if split is None:
            return None
        step.starts = 1
        step.s_ilen, step.s_ival, step.s_point, step.s_flen, step.s_fval = split
        step.s_axis, step.s_above, step.s_chars = int(dfa.axis[last_state]), int(dfa.above[last_state]), len(chars)
        step.s_capped = int(dfa.capped[last_state])
        if cont is not None and step.s_above == int(dfa.slot[state]):
            return None  # its bound is the number this same token ends
    return step
