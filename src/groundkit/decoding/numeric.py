"""Number checks and register updates, written once for torch tensors and numpy arrays.

Values are integers scaled by ``10 ** m`` (``m`` = the frame's most decimals). A row writes
a number as integer part ``I`` (``n`` digits) and fraction ``F`` (``f`` digits; ``f = -1``
before the point). The device step uses torch; the CPU step uses numpy views of the same
registers (:mod:`groundkit.decoding.host`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

POWERS = 19


@dataclass(frozen=True)
class Ops:
    """The few array operations the number logic needs, for one array library."""

    where: Any
    take: Any  # take(a, idx): a[i, idx[i, ...]] along axis 1
    arange: Any
    clip: Any
    full_like: Any


TORCH = Ops(torch.where, lambda a, i: a.gather(1, i), lambda n, like: torch.arange(n, device=like.device),
            lambda a, lo, hi: a.clamp(lo, hi), torch.full_like)


def _np_take(a: np.ndarray, i: np.ndarray) -> np.ndarray:
    return a[np.arange(a.shape[0])[:, None], i]


def _np_clip(a: Any, lo: int, hi: int | None) -> Any:
    """``np.clip`` without its per-call overhead (it dominates on arrays of a few rows)."""
    return np.maximum(a, lo) if hi is None else np.minimum(np.maximum(a, lo), hi)


NUMPY = Ops(np.where, _np_take, lambda n, like: np.arange(n), _np_clip, np.full_like)


@dataclass
class Registers:
    """Per-row number state (same array library as ``ops``)."""

    I: Any  # noqa: E741 - the integer part, as in the module docstring
    n: Any
    f: Any
    F: Any
    slots: Any
    hi: Any


@dataclass
class NumberTables:
    """Per-state number data: ``pack`` (S, N, fields), ``tok``/``valid`` (S, N), and per state
    ``in_number``, ``above``, ``axis``, ``capped``, ``dist``; ``fields`` names pack's last axis."""

    pack: Any
    tok: Any
    valid: Any
    fields: dict[str, int]
    in_number: Any
    above: Any
    axis: Any
    capped: Any
    pow10: Any
    m: int
    width: int


def scaled(o: Ops, t: NumberTables, I: Any, f: Any, F: Any) -> Any:  # noqa: E741
    frac = o.where(f >= 0, F * t.pow10[o.clip(t.m - f, 0, POWERS - 1)], 0 * F)
    return I * t.pow10[t.m] + frac


def prefix_ok(o: Ops, t: NumberTables, I: Any, f: Any, F: Any, lo: Any, hi: Any) -> Any:  # noqa: E741
    """Some completion of the number written so far lies in [lo, hi]."""
    p, m = t.pow10, t.m
    low = scaled(o, t, I, f, F)
    span = o.where(f >= 0, p[o.clip(m - f, 0, POWERS - 1)], p[m] + 0 * f)
    frac_or_zero = (low <= hi) & (low + span - 1 >= lo)
    j = o.arange(7, I)
    start = I[..., None] * p[m + j]
    grow = ((start <= hi[..., None]) & ((I[..., None] + 1) * p[m + j] - 1 >= lo[..., None])).any(-1)
    open_int = (f < 0) & (I > 0)  # integer part still open (not a lone "0"): it may grow
    return o.where(open_int, grow, frac_or_zero)


def bounds(o: Ops, r: Registers, above: Any, axis: Any, capped: Any) -> tuple[Any, Any]:
    lo = o.where(above >= 0, o.take(r.slots, o.clip(above, 0, None)) + 1, 0 * above)
    hi = o.take(r.hi, o.clip(axis, 0, None)) - capped
    return lo, hi


def number_ok(o: Ops, t: NumberTables, r: Registers, s: Any, thr: Any) -> tuple[Any, Any]:
    """(tokens, ok) of the number-touching tokens of each row's state ``s``."""
    pack = t.pack[s]
    g = lambda name: pack[..., t.fields[name]]  # noqa: E731
    p = t.pow10
    ilen, flen, point, ends, starts = g("c_ilen"), g("c_flen"), g("c_point") > 0, g("ends") > 0, g("starts") > 0
    I2 = r.I[:, None] * p[ilen] + g("c_ival")
    n2 = r.n[:, None] + ilen
    f0, F0 = r.f[:, None], r.F[:, None]
    f2 = o.where(point, flen, o.where(f0 >= 0, f0 + flen, f0 + 0 * flen))
    F2 = o.where(point, g("c_fval"), o.where(f0 >= 0, F0 * p[flen] + g("c_fval"), F0 + 0 * flen))
    lo, hi = bounds(o, r, t.above[s][:, None], t.axis[s][:, None], t.capped[s][:, None] * 1)
    value = scaled(o, t, I2, f2, F2)
    cont_ok = o.where(ends, (value >= lo) & (value <= hi), prefix_ok(o, t, I2, f2, F2, lo, hi))
    cont_ok = cont_ok | ~t.in_number[s][:, None]
    s_lo, s_hi = bounds(o, r, g("s_above"), g("s_axis"), g("s_capped"))
    sf = o.where(g("s_point") > 0, g("s_flen"), o.full_like(flen, -1))
    start_ok = prefix_ok(o, t, g("s_ival"), sf, g("s_fval"), s_lo, s_hi) | ~starts
    chars = o.where(starts, g("s_chars"), n2 + o.where(f2 >= 0, f2 + 1, 0 * f2))
    budget_ok = o.where(ends & ~starts, g("dist_next") <= thr[:, None], t.width - chars + g("exit_next") <= thr[:, None])
    return t.tok[s], (cont_ok & start_ok & budget_ok) | ~t.valid[s]


def advance_numbers(o: Ops, t: NumberTables, r: Registers, s: Any, slot: Any, pos: Any, hit: Any) -> Registers:
    """Registers after each row's token (``pos``: its index in the state's number list, ``hit``:
    whether it is there); ``slot``: each row's number slot (-1 outside numbers)."""
    pack = t.pack[s, pos]
    g = lambda name: pack[:, t.fields[name]]  # noqa: E731
    p = t.pow10
    ilen, flen, point, ends, starts = g("c_ilen"), g("c_flen"), g("c_point") > 0, g("ends") > 0, g("starts") > 0
    cont = hit & t.in_number[s]
    I2 = r.I * p[ilen] + g("c_ival")
    f2 = o.where(point, flen, o.where(r.f >= 0, r.f + flen, r.f))
    F2 = o.where(point, g("c_fval"), o.where(r.f >= 0, r.F * p[flen] + g("c_fval"), r.F))
    ended = cont & ends
    col = o.clip(slot, 0, None)[:, None]
    current = o.take(r.slots, col)[:, 0]
    value = scaled(o, t, I2, f2, F2)
    slots = r.slots * 1
    rows = o.arange(len(slot), slot)
    slots[rows, col[:, 0]] = o.where(ended, value, current)
    started = hit & starts
    sf = o.where(g("s_point") > 0, g("s_flen"), o.full_like(flen, -1))
    return Registers(
        I=o.where(started, g("s_ival"), o.where(cont, I2, r.I)),
        n=o.where(started, g("s_ilen"), o.where(cont, r.n + ilen, r.n)),
        f=o.where(started, sf, o.where(cont, f2, r.f)),
        F=o.where(started, g("s_fval"), o.where(cont, F2, r.F)),
        slots=slots, hi=r.hi,
    )
