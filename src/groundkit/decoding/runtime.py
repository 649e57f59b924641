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

from groundkit.decoding.host import HostLists, advance_host, mask_host
from groundkit.decoding.numeric import TORCH, NumberTables, Registers, advance_numbers, number_ok
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
        names = [k[4:] for k in tables.arrays if k.startswith("num_") and k not in ("num_tok", "num_valid")]
        self.num_fields = {name: i for i, name in enumerate(names)}
        self.num_pack = torch.stack([getattr(self, "num_" + n).to(torch.int64) for n in names], -1)  # (S, N, F): one gather per step
        self.numbers = NumberTables(self.num_pack, self.num_tok, self.num_valid, self.num_fields, self.in_number, self.above,
                                    self.axis, self.capped.long(), self.pow10, tables.max_decimals, tables.number_chars)
        self.host = device.type == "cpu"  # on the CPU reading the state is free: see groundkit.decoding.host
        self.host_lists = HostLists(self) if self.host else None
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
        self.step = torch.zeros((), dtype=torch.int64, device=dev)  # on the device, for the tensor step
        self.steps_taken = 0  # the same count on the host, for the CPU step
        self.I = torch.zeros(b, dtype=torch.int64, device=dev)
        self.n = torch.zeros(b, dtype=torch.int64, device=dev)
        self.f = torch.full((b,), -1, dtype=torch.int64, device=dev)
        self.F = torch.zeros(b, dtype=torch.int64, device=dev)
        self.slots = torch.zeros((b, dt.n_slots), dtype=torch.int64, device=dev)
        self.use_host = True  # tests switch it off to compare with the tensor step on the CPU

    # --- numbers (see groundkit.decoding.numeric) --------------------------------------
    def registers(self) -> Registers:
        return Registers(self.I, self.n, self.f, self.F, self.slots, self.hi)

    def set_registers(self, r: Registers) -> None:
        """In place: a captured CUDA graph replays into the same buffers."""
        for register, value in zip((self.I, self.n, self.f, self.F, self.slots), (r.I, r.n, r.f, r.F, r.slots)):
            register.copy_(value)

    def _number_ok(self, thr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return number_ok(TORCH, self.dt.numbers, self.registers(), self.state, thr)

    # --- the step ------------------------------------------------------------------------
    def mask_(self, scores: torch.Tensor) -> torch.Tensor:
        """Set disallowed tokens of every row to -inf, in place; returns ``scores``."""
        if self.dt.host and self.use_host:
            V = self.dt.tables.vocab_size
            if scores.shape[-1] > V:
                scores.narrow(-1, V, scores.shape[-1] - V).fill_(NEG_INF)
            return mask_host(self, scores)
        return self.mask_tensor_(scores)

    def mask_tensor_(self, scores: torch.Tensor) -> torch.Tensor:
        """The device step: padded per-state lists, gathers and scatters, no host reads."""
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
        if self.dt.host and self.use_host:
            advance_host(self, tokens, active)
            return
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
        self.state.copy_(nxt)  # in place, like the registers (CUDA-graph capture)
        self.step += 1
        self.steps_taken += 1

    def _advance_numbers(self, t: torch.Tensor, s: torch.Tensor) -> None:
        dt = self.dt
        num = dt.num_tok[s]
        pos = torch.searchsorted(num, t).clamp_max(num.shape[1] - 1)
        hit = ((num.gather(1, pos) == t) & dt.num_valid[s].gather(1, pos)).squeeze(1)
        self.set_registers(advance_numbers(TORCH, dt.numbers, self.registers(), s, dt.slot[s], pos.squeeze(1), hit))

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
