"""The number logic and the state transition for one row, in plain Python integers.

For one row, numpy's fixed cost per operation (a microsecond or two, paid ~150 times by
:func:`groundkit.decoding.numeric.number_ok`) is far more than the work: a number state
has 14-24 candidate tokens, a transition is one lookup. These functions compute exactly what the
array code computes for one row (``tests/test_decoding_host.py`` checks the paths agree
on every step of many rollouts); :mod:`groundkit.decoding.host` uses them for every row's
transition and for the number checks of a step with few rows in number states.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from groundkit.decoding.numeric import POWERS

if TYPE_CHECKING:
    from groundkit.decoding.host import HostLists

POW10 = [10**i for i in range(POWERS)]


class NumberToken(NamedTuple):
    """One number-touching token of a state (the fields of ``NumberTables.pack``)."""

    tok: int
    c_ilen: int
    c_ival: int
    c_point: int
    c_flen: int
    c_fval: int
    ends: int
    starts: int
    s_ilen: int
    s_ival: int
    s_point: int
    s_flen: int
    s_fval: int
    s_axis: int
    s_above: int
    s_capped: int
    s_chars: int
    dist_next: int
    exit_next: int


@dataclass
class RowRegisters:
    """One row's number registers (see :class:`groundkit.decoding.numeric.Registers`)."""

    I: int  # noqa: E741 - the integer part
    n: int
    f: int
    F: int
    slots: list[int]
    hi: list[int]


class ScalarLists:
    """Per-state Python lists and dicts for the per-row path, built once from :class:`HostLists`."""

    def __init__(self, h: HostLists):
        t = h.numbers
        columns = [t.fields[name] for name in NumberToken._fields[1:]]
        self.m, self.width, self.dead, self.vocab_size = t.m, t.width, h.dead, h.vocab_size
        self.in_number = t.in_number.tolist()
        self.above, self.axis, self.capped = t.above.tolist(), t.axis.tolist(), t.capped.tolist()
        self.default_next = h.default_next.tolist()
        self.next_of = [dict(zip(ex.tolist(), nxt.tolist())) for ex, nxt in zip(h.ex_np, h.ex_next)]
        self.denied = [frozenset(d.tolist()) for d in h.deny_np]
        self.numbers: list[list[NumberToken]] = []
        self.number_of: list[dict[int, NumberToken]] = []
        for s in range(len(self.default_next)):
            valid = t.valid[s]
            packed = t.pack[s][valid][:, columns].tolist()
            rows = [NumberToken(k, *v) for k, v in zip(t.tok[s][valid].tolist(), packed)]
            self.numbers.append(rows)
            self.number_of.append({r.tok: r for r in rows})

    # --- numbers --------------------------------------------------------------------------
    def scaled(self, I: int, f: int, F: int) -> int:  # noqa: E741
        return I * POW10[self.m] + (F * POW10[min(max(self.m - f, 0), POWERS - 1)] if f >= 0 else 0)

    def prefix_ok(self, I: int, f: int, F: int, lo: int, hi: int) -> bool:  # noqa: E741
        """Some completion of the number written so far lies in [lo, hi]."""
        m = self.m
        if f < 0 and I > 0:  # the integer part may still grow by j digits
            # both ends of [I * 10^j, (I + 1) * 10^j - 1] grow with j: the first j whose upper
            # end reaches lo is the one to check against hi
            for j in range(m, m + 7):
                if (I + 1) * POW10[j] > lo:
                    return I * POW10[j] <= hi
            return False
        if f >= 0:
            e = POW10[min(max(m - f, 0), POWERS - 1)]
            low = I * POW10[m] + F * e
            return low <= hi and low + e - 1 >= lo
        low = I * POW10[m]
        return low <= hi and low + POW10[m] - 1 >= lo

    @staticmethod
    def bounds(r: RowRegisters, above: int, axis: int, capped: int) -> tuple[int, int]:
        lo = r.slots[above] + 1 if above >= 0 else 0
        return lo, r.hi[max(axis, 0)] - capped

    def forbidden_numbers(self, s: int, r: RowRegisters, thr: int) -> list[int]:
        """The number tokens of state ``s`` that ``r`` may not take (``number_ok``'s False)."""
        out = []
        in_number = self.in_number[s]
        if in_number:
            lo, hi = self.bounds(r, self.above[s], self.axis[s], self.capped[s])
        prefix_ok, scaled, width, n = self.prefix_ok, self.scaled, self.width, r.n
        for c in self.numbers[s]:
            I2, f2, F2 = self._continue(r, c)
            if in_number:
                ok = lo <= scaled(I2, f2, F2) <= hi if c.ends > 0 else prefix_ok(I2, f2, F2, lo, hi)
                if not ok:
                    out.append(c.tok)
                    continue
            if c.starts > 0:
                if not prefix_ok(c.s_ival, c.s_flen if c.s_point > 0 else -1, c.s_fval, *self.bounds(r, c.s_above, c.s_axis, c.s_capped)):
                    out.append(c.tok)
                    continue
            elif c.ends > 0:
                if c.dist_next > thr:
                    out.append(c.tok)
                continue
            chars = c.s_chars if c.starts > 0 else n + c.c_ilen + (f2 + 1 if f2 >= 0 else 0)
            if width - chars + c.exit_next > thr:
                out.append(c.tok)
        return out

    @staticmethod
    def _continue(r: RowRegisters, c: NumberToken) -> tuple[int, int, int]:
        """(I, f, F) after the token's continuing digits."""
        I2 = r.I * POW10[c.c_ilen] + c.c_ival  # noqa: N806
        if c.c_point > 0:
            return I2, c.c_flen, c.c_fval
        if r.f >= 0:
            return I2, r.f + c.c_flen, r.F * POW10[c.c_flen] + c.c_fval
        return I2, r.f, r.F

    # --- the transition ---------------------------------------------------------------------
    def next_state(self, s: int, t: int) -> int:
        if t >= self.vocab_size or t in self.denied[s]:
            return self.dead
        return self.next_of[s].get(t, self.default_next[s])

    def advance_numbers(self, s: int, slot: int, r: RowRegisters, t: int) -> None:
        """Update ``r`` in place for token ``t`` taken in state ``s`` (``slot``: -1 outside numbers)."""
        c = self.number_of[s].get(t)
        if c is None:
            return
        if self.in_number[s]:
            I2, f2, F2 = self._continue(r, c)
            if c.ends > 0:
                r.slots[max(slot, 0)] = self.scaled(I2, f2, F2)
            r.I, r.n, r.f, r.F = I2, r.n + c.c_ilen, f2, F2
        if c.starts > 0:
            r.I, r.n, r.f, r.F = c.s_ival, c.s_ilen, (c.s_flen if c.s_point > 0 else -1), c.s_fval


def row_registers(I: np.ndarray, n: np.ndarray, f: np.ndarray, F: np.ndarray, slots: np.ndarray, hi: np.ndarray,  # noqa: E741
                  row: int) -> RowRegisters:
    return RowRegisters(int(I[row]), int(n[row]), int(f[row]), int(F[row]), slots[row].tolist(), hi[row].tolist())
