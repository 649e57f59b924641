"""Mask replay without a (B, T, V) mask: one scan over the completion records each position's
automaton state and number registers; the mask of any set of positions is then rebuilt on
demand as a *sparse* description from the tables.

Per position the tables say which tokens the state allows (a narrow state: its explicit
tokens within budget, less the number tokens its value bounds forbid) or forbids (a wide,
free-text state: its deny list, its explicit tokens over budget, the number tokens out of
bounds, and ids past the tokenizer's vocabulary). :class:`SparseMask` holds those columns
per position, so a masked log-normaliser is a gather (narrow) or a correction of the full
one (wide), and :meth:`SparseMask.mask_` applies exactly the mask
:meth:`groundkit.decoding.runtime.BatchConstraint.mask_` applies, to a few rows at a time.

The scan is the generation step's ``advance`` (pure tensor operations on a GPU, so it reads
nothing back to the host; the per-row host step on the CPU) plus a few copies per step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from groundkit.decoding.numeric import TORCH, Registers, number_ok
from groundkit.decoding.runtime import DeviceTables
from groundkit.errors import GroundkitError

NEG_INF = float("-inf")


@dataclass
class SparseMask:
    """The replayed mask of P positions, as columns per position in three sections (explicit,
    deny, number tokens) plus the ids past the tokenizer's vocabulary (``tail``).

    ``hit`` marks, per column, the tokens a *narrow* position allows (explicit section only)
    or a *wide* position forbids (every section; a wide position also forbids the tail). Sections are sorted per state
    and padded by repeating their last entry; ``first`` marks the first occurrence, so the
    ``hit & first`` columns of a position list each counted token once (the sections of one
    position never count the same token twice: explicit and deny tokens are disjoint by
    construction, and a number token over its bounds is counted only where its explicit
    entry is not)."""

    narrow: torch.Tensor  # (P,) bool
    free: torch.Tensor  # (P,) bool: positions outside the completion, nothing masked
    sections: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]  # (cols, hit, first), each (P, K_i)
    vocab_size: int  # ids at or past it are never allowed
    width: int  # the logits' last dimension

    def columns(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(cols, counted): the columns of every section, and whether each counts (the tail,
        ids from ``vocab_size`` to ``width``, is a contiguous slice and not listed)."""
        return torch.cat([c for c, _, _ in self.sections], 1), torch.cat([h & f for _, h, f in self.sections], 1)

    def allows(self, ids: torch.Tensor) -> torch.Tensor:
        """(P,) whether each position's mask allows token ``ids[p]``."""
        t = ids[:, None]
        hit = torch.zeros_like(self.narrow)
        for cols, h, _ in self.sections:
            hit |= ((cols == t) & h).any(1)
        return torch.where(self.narrow, hit, ~hit & ((ids < self.vocab_size) | self.free))

    def mask_(self, scores: torch.Tensor) -> torch.Tensor:
        """-inf, in place, on what the positions' masks forbid in ``scores`` (P, width);
        the same sequence of writes as the generation step, so equal tokens never conflict."""
        (ex, ex_hit, _), (deny, deny_hit, _), (num, num_hit, _) = self.sections
        narrow = self.narrow[:, None]
        kept = scores.gather(1, ex)
        if scores.device.type == "cpu":  # only the narrow rows (reading the flags is free here)
            scores.index_fill_(0, torch.nonzero(self.narrow).flatten(), NEG_INF)
        else:  # no host read on a device
            scores.masked_fill_(narrow, NEG_INF)
        inf = torch.full_like(kept, NEG_INF)
        scores.scatter_(1, ex, torch.where(narrow, torch.where(ex_hit, kept, inf), torch.where(ex_hit, inf, kept)))
        for cols, hit in ((deny, deny_hit), (num, num_hit)):
            cur = scores.gather(1, cols)
            scores.scatter_(1, cols, torch.where(hit, torch.full_like(cur, NEG_INF), cur))
        if scores.shape[1] > self.vocab_size:
            tail = scores[:, self.vocab_size:]
            tail.masked_fill_(~self.free[:, None], NEG_INF)
        return scores


def _first(cols: torch.Tensor) -> torch.Tensor:
    """First occurrence of each entry in rows sorted ascending (padding repeats the last)."""
    first = torch.ones_like(cols, dtype=torch.bool)
    first[:, 1:] = cols[:, 1:] != cols[:, :-1]
    return first


def _member(sorted_cols: torch.Tensor, flags: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """Whether each of ``values`` (P, M) is in its row of ``sorted_cols`` (P, K) with ``flags`` set."""
    pos = torch.searchsorted(sorted_cols, values).clamp_max(sorted_cols.shape[1] - 1)
    return (sorted_cols.gather(1, pos) == values) & flags.gather(1, pos)


@dataclass
class ReplayedStates:
    """The state of every completion position (flattened row-major: ``n = row * steps + t``),
    recorded once per batch and turned into :class:`SparseMask` s on demand."""

    dt: DeviceTables
    state: torch.Tensor  # (N,) automaton state before the token at n
    thr: torch.Tensor  # (N,) budget threshold (tokens left to finish)
    registers: Registers  # (N, ...) number registers before the token at n
    batch: int
    steps: int

    @property
    def vocab_size(self) -> int:
        return self.dt.tables.vocab_size

    def mask(self, positions: torch.Tensor, width: int) -> SparseMask:
        """The sparse mask of ``positions`` (P,) for logits of last dimension ``width``; a
        negative position (a prompt token) masks nothing."""
        dt = self.dt
        if width < dt.tables.vocab_size:
            raise GroundkitError(f"mask replay: the logits have {width} columns, fewer than the tokenizer's "
                                 f"{dt.tables.vocab_size} ids the decoding tables were built for")
        free = positions < 0
        positions = positions.clamp_min(0)
        s, thr = self.state[positions], self.thr[positions]
        r = self.registers
        regs = Registers(r.I[positions], r.n[positions], r.f[positions], r.F[positions], r.slots[positions], r.hi[positions])
        narrow = (dt.default_dist[s] > thr) & ~free
        nw = narrow[:, None]
        ex, ex_valid = dt.ex_tok[s], dt.ex_valid[s]
        keep = dt.ex_dist[s] <= thr[:, None]
        num, num_ok = number_ok(TORCH, dt.numbers, regs, s, thr)  # ok is True on padding
        bad_num = ~num_ok
        masked = ~free[:, None]
        ex_hit = torch.where(nw, ex_valid & keep & ~_member(num, bad_num, ex), ex_valid & ~keep & masked)
        deny, deny_hit = dt.deny_tok[s], dt.deny_valid[s] & ~nw & masked
        num_hit = bad_num & ~nw & masked & ~_member(ex, ex_valid & ~keep, num)
        sections = [(ex, ex_hit, _first(ex)), (deny, deny_hit, _first(deny)), (num, num_hit, _first(num))]
        return SparseMask(narrow, free, sections, dt.tables.vocab_size, width)


def replay_states(processor: Any, completion_ids: torch.Tensor, completion_mask: torch.Tensor | None = None) -> ReplayedStates:
    """Scan ``completion_ids`` (B, T) through ``processor`` 's tables (a
    :class:`~groundkit.decoding.processor.GroundedLogitsProcessor`) once, recording what
    :class:`ReplayedStates` needs; rows stop where ``completion_mask`` is 0."""
    batch, steps = completion_ids.shape
    device = completion_ids.device
    c = processor.new_constraint(batch, device)
    state = torch.empty((steps, batch), dtype=torch.int64, device=device)
    regs = [torch.empty((steps, batch), dtype=torch.int64, device=device) for _ in range(4)]
    slots = torch.empty((steps, *c.slots.shape), dtype=torch.int64, device=device)
    active = None if completion_mask is None else completion_mask.bool()
    with torch.no_grad():
        for t in range(steps):
            state[t].copy_(c.state)
            for out, value in zip(regs, (c.I, c.n, c.f, c.F)):
                out[t].copy_(value)
            slots[t].copy_(c.slots)
            c.advance(completion_ids[:, t], None if active is None else active[:, t])
        flat = lambda x: x.transpose(0, 1).reshape(batch * steps, *x.shape[2:])  # noqa: E731 - (T, B, ...) -> (B*T, ...)
        st = flat(state)
        t_index = torch.arange(steps, device=device).repeat(batch)
        remaining = c.budget - t_index
        thr = torch.maximum(c.dt.dist[st] - 1, remaining - 1)
        registers = Registers(*(flat(x) for x in regs), flat(slots), c.hi.repeat_interleave(steps, 0))
    return ReplayedStates(c.dt, st, thr, registers, batch, steps)


def supports_replay_states(processor: Any) -> bool:
    """Whether ``processor`` has the tables :func:`replay_states` scans."""
    return callable(getattr(processor, "new_constraint", None)) and hasattr(processor, "tables")
