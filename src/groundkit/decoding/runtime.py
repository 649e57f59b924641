"""The batch step on the logits' device: mask, then advance; tensor operations only.

Per row the state is the automaton state plus the number registers of the number being
written: integer part ``I`` with ``n`` digits, fraction ``F`` with ``f`` digits (``f = -1``
before the decimal point), and the finished values of the grounding's earlier numbers
(``slots``) for ordering bounds (box x2 > x1). Values are compared as integers scaled by
``10 ** max_decimals``. No step reads a tensor back to the host.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from groundkit.decoding.tables import INF, MAX_PIXEL_BOUND, TokenTables
from groundkit.errors import FrameError
from groundkit.frames import Frame, ImageSize

NEG_INF = float("-inf")


class DeviceTables:
    """:class:`TokenTables` as tensors on one device."""

    def __init__(self, tables: TokenTables, device: torch.device):
        self.tables = tables
        self.device = device
        for name, array in tables.arrays.items():
            setattr(self, name, torch.as_tensor(np.ascontiguousarray(array), device=device))
        self.pow10 = torch.tensor([10**i for i in range(19)], dtype=torch.int64, device=device)
        self.n_slots = int(max(1, tables.arrays["slot"].max() + 1))


def row_bounds(frame: Frame, image_sizes: Sequence[ImageSize | None] | None, batch: int) -> np.ndarray:
    """(batch, 2) upper bounds of written values, scaled to integers."""
    scale = 10**frame.max_decimals
    out = np.zeros((batch, 2), np.int64)
    sizes = list(image_sizes) if image_sizes is not None else [None] * batch
    if len(sizes) != batch:
        raise FrameError(f"got {len(sizes)} image sizes for a batch of {batch} rows")
    for i, size in enumerate(sizes):
        for axis, name in enumerate("xy"):
            hi = frame.extent(name, size)
            if frame.per_image and hi > MAX_PIXEL_BOUND:
                raise FrameError(f"row {i}: image side {hi:g} px exceeds the decoder's limit of {MAX_PIXEL_BOUND} px")
            out[i, axis] = round(hi * scale)
    return out


class BatchConstraint:
    """Per-row automaton + number state for one batch, with ``mask_`` and ``advance``."""

    def __init__(self, dt: DeviceTables, bounds: np.ndarray, max_new_tokens: int | None):
        b = bounds.shape[0]
        dev = dt.device
        self.dt = dt
        self.batch = b
        self.hi = torch.as_tensor(bounds, device=dev)
        self.budget = INF if max_new_tokens is None else int(max_new_tokens)
        self.m = dt.tables.max_decimals
        self.width = dt.tables.number_chars
        self.state = torch.full((b,), dt.tables.start, dtype=torch.int64, device=dev)
        self.step = torch.zeros((), dtype=torch.int64, device=dev)
        self.I = torch.zeros(b, dtype=torch.int64, device=dev)
        self.n = torch.zeros(b, dtype=torch.int64, device=dev)
        self.f = torch.full((b,), -1, dtype=torch.int64, device=dev)
        self.F = torch.zeros(b, dtype=torch.int64, device=dev)
        self.slots = torch.zeros((b, dt.n_slots), dtype=torch.int64, device=dev)

    # --- numbers -----------------------------------------------------------------------
    def _scaled(self, I: torch.Tensor, f: torch.Tensor, F: torch.Tensor) -> torch.Tensor:
        p = self.dt.pow10
        frac = torch.where(f >= 0, F * p[(self.m - f).clamp(0, 18)], torch.zeros_like(F))
        return I * p[self.m] + frac

    def _prefix_ok(self, I, n, f, F, lo, hi) -> torch.Tensor:  # noqa: ANN001
        """Some completion of the number written so far lies in [lo, hi]."""
        p = self.dt.pow10
        m = self.m
        low = self._scaled(I, f, F)
        span = torch.where(f >= 0, p[(m - f).clamp(0, 18)], p[m])
        frac_or_zero = (low <= hi) & (low + span - 1 >= lo)
        # integer part still open and not a lone "0": it may grow by j more digits
        j = torch.arange(0, 7, device=I.device).view(*([1] * I.dim()), -1)
        start = I.unsqueeze(-1) * p[m + j]
        grow = ((start <= hi.unsqueeze(-1)) & ((I.unsqueeze(-1) + 1) * p[m + j] - 1 >= lo.unsqueeze(-1))).any(-1)
        open_int = (f < 0) & (I > 0)
        return torch.where(open_int, grow, frac_or_zero)

    def _bounds(self, above: torch.Tensor, axis: torch.Tensor, capped: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        lo = torch.where(above >= 0, self.slots.gather(1, above.clamp_min(0)) + 1, torch.zeros_like(above))
        hi = self.hi.gather(1, axis.clamp_min(0)) - capped.long()
        return lo, hi

    def _number_ok(self, thr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        dt, s = self.dt, self.state
        g = lambda name: getattr(dt, "num_" + name)[s]  # noqa: E731
        p = dt.pow10
        ilen, flen, point, ends, starts = g("c_ilen"), g("c_flen"), g("c_point").bool(), g("ends").bool(), g("starts").bool()
        I2 = self.I[:, None] * p[ilen] + g("c_ival")
        n2 = self.n[:, None] + ilen
        f0, F0 = self.f[:, None], self.F[:, None]
        f2 = torch.where(point, flen, torch.where(f0 >= 0, f0 + flen, f0))
        F2 = torch.where(point, g("c_fval"), torch.where(f0 >= 0, F0 * p[flen] + g("c_fval"), F0))
        lo, hi = self._bounds(dt.above[s][:, None], dt.axis[s][:, None], dt.capped[s][:, None])
        value = self._scaled(I2, f2, F2)
        cont_ok = torch.where(ends, (value >= lo) & (value <= hi), self._prefix_ok(I2, n2, f2, F2, lo, hi))
        cont_ok = cont_ok | ~dt.in_number[s][:, None]
        s_lo, s_hi = self._bounds(g("s_above"), g("s_axis"), g("s_capped"))
        sI, sf = g("s_ival"), torch.where(g("s_point").bool(), g("s_flen"), torch.full_like(starts, -1, dtype=torch.int64))
        start_ok = self._prefix_ok(sI, g("s_ilen"), sf, g("s_fval"), s_lo, s_hi) | ~starts
        chars = torch.where(starts, g("s_chars"), n2 + torch.where(f2 >= 0, f2 + 1, torch.zeros_like(f2)))
        budget_ok = torch.where(ends & ~starts, g("dist_next") <= thr[:, None], self.width - chars + g("exit_next") <= thr[:, None])
        ok = (cont_ok & start_ok & budget_ok) | ~g("valid")
        return g("tok"), ok

    # --- the step ------------------------------------------------------------------------
    def mask_(self, scores: torch.Tensor) -> torch.Tensor:
        """Set disallowed tokens of every row to -inf, in place; returns ``scores``."""
        dt, s = self.dt, self.state
        V = dt.tables.vocab_size
        if scores.shape[-1] > V:
            scores[:, V:] = NEG_INF  # ids the tokenizer does not have (padded embedding rows)
        remaining = self.budget - self.step
        thr = torch.maximum(dt.dist[s] - 1, remaining - 1)
        row_narrow = dt.default_dist[s] > thr
        ex = dt.ex_tok[s]
        orig = scores.gather(1, ex)
        scores.masked_fill_(row_narrow[:, None], NEG_INF)
        ex_ok = dt.ex_dist[s] <= thr[:, None]
        scores.scatter_(1, ex, torch.where(ex_ok, orig, torch.full_like(orig, NEG_INF)))
        deny = dt.deny_tok[s]
        cur = scores.gather(1, deny)
        scores.scatter_(1, deny, torch.where(dt.deny_valid[s], torch.full_like(cur, NEG_INF), cur))
        num_tok, num_ok = self._number_ok(thr)
        cur = scores.gather(1, num_tok)
        scores.scatter_(1, num_tok, torch.where(num_ok, cur, torch.full_like(cur, NEG_INF)))
        return scores

    def advance(self, tokens: torch.Tensor, active: torch.Tensor | None = None) -> None:
        """Move every row by its chosen token (rows with ``active`` False stay put)."""
        dt, s = self.dt, self.state
        tokens = tokens.to(torch.int64).contiguous()
        t = tokens[:, None]
        ex = dt.ex_tok[s]
        pos = torch.searchsorted(ex, t).clamp_max(ex.shape[1] - 1)
        hit = (ex.gather(1, pos) == t).squeeze(1) & dt.ex_valid[s].gather(1, pos).squeeze(1)
        nxt = torch.where(hit, dt.ex_next[s].gather(1, pos).squeeze(1), dt.default_next[s])
        deny = dt.deny_tok[s]
        dpos = torch.searchsorted(deny, t).clamp_max(deny.shape[1] - 1)
        denied = (deny.gather(1, dpos) == t).squeeze(1) & dt.deny_valid[s].gather(1, dpos).squeeze(1)
        nxt = torch.where(denied | (tokens >= dt.tables.vocab_size), torch.full_like(nxt, dt.tables.dead), nxt)
        self._advance_numbers(t, s)
        if active is not None:
            nxt = torch.where(active, nxt, s)
        self.state = nxt
        self.step += 1

    def _advance_numbers(self, t: torch.Tensor, s: torch.Tensor) -> None:
        dt = self.dt
        num = dt.num_tok[s]
        pos = torch.searchsorted(num, t).clamp_max(num.shape[1] - 1)
        hit = ((num.gather(1, pos) == t) & dt.num_valid[s].gather(1, pos)).squeeze(1)
        g = lambda name: getattr(dt, "num_" + name)[s].gather(1, pos).squeeze(1)  # noqa: E731
        p = dt.pow10
        ilen, flen, point, ends, starts = g("c_ilen"), g("c_flen"), g("c_point").bool(), g("ends").bool(), g("starts").bool()
        cont = hit & dt.in_number[s]
        I2 = self.I * p[ilen] + g("c_ival")
        f2 = torch.where(point, flen, torch.where(self.f >= 0, self.f + flen, self.f))
        F2 = torch.where(point, g("c_fval"), torch.where(self.f >= 0, self.F * p[flen] + g("c_fval"), self.F))
        n2 = self.n + ilen
        ended = cont & ends
        slot = dt.slot[s].clamp_min(0)
        value = self._scaled(I2, f2, F2)
        current = self.slots.gather(1, slot[:, None]).squeeze(1)
        self.slots.scatter_(1, slot[:, None], torch.where(ended, value, current)[:, None])
        started = hit & starts
        sf = torch.where(g("s_point").bool(), g("s_flen"), torch.full_like(flen, -1))
        self.I = torch.where(started, g("s_ival"), torch.where(cont, I2, self.I))
        self.n = torch.where(started, g("s_ilen"), torch.where(cont, n2, self.n))
        self.f = torch.where(started, sf, torch.where(cont, f2, self.f))
        self.F = torch.where(started, g("s_fval"), torch.where(cont, F2, self.F))

    def guard_(self, scores: torch.Tensor) -> torch.Tensor:
        """Rows a previous filter (top-k/top-p) left with nothing allowed: uniform over allowed."""
        dead = torch.isneginf(scores.amax(-1))
        scores.masked_fill_(dead[:, None], 0.0)
        return self.mask_(scores)


def as_device_tables(tables: TokenTables, device: torch.device, cache: dict[Any, DeviceTables]) -> DeviceTables:
    key = (id(tables), str(device))
    if key not in cache:
        cache[key] = DeviceTables(tables, device)
    return cache[key]
