"""The CPU step: the same masks as the tensor step, with the per-row bookkeeping in numpy.

On a GPU the step must stay on the device (no syncs), so it is pure tensor operations over
padded per-state lists. On the CPU reading the state is free, and the fixed cost of each
torch operation dominates small batches; so rows are grouped by state and each group pays
one scatter of exactly what its state forbids (a wide state) or keeps (a narrow state).
Numbers reuse the tensor code. ``tests/test_decoding_host.py`` checks both paths agree.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from groundkit.decoding.numeric import NUMPY, NumberTables, Registers, advance_numbers, number_ok

if TYPE_CHECKING:
    from groundkit.decoding.runtime import BatchConstraint, DeviceTables

NEG_INF = float("-inf")


class HostLists:
    """Unpadded per-state lists (numpy for lookups, torch for indexing scores)."""

    def __init__(self, dt: DeviceTables):
        a = dt.tables.arrays
        n = a["dist"].shape[0]
        self.dist, self.default_dist, self.default_next = a["dist"], a["default_dist"], a["default_next"]
        self.has_numbers = a["num_valid"].any(1)
        self.numbers = NumberTables(dt.num_pack.numpy(), a["num_tok"], a["num_valid"], dt.num_fields, a["in_number"], a["above"],
                                    a["axis"], a["capped"].astype(np.int64), dt.pow10.numpy(), dt.tables.max_decimals,
                                    dt.tables.number_chars)
        self.ex_np, self.ex_next, self.ex_dist, self.ex_t, self.deny_np, self.deny_t = [], [], [], [], [], []
        self.ex_max_dist = np.zeros(n, np.int64)
        for s in range(n):
            valid = a["ex_valid"][s]
            ex = np.unique(a["ex_tok"][s][valid]) if valid.any() else np.zeros(0, np.int64)
            pos = np.searchsorted(a["ex_tok"][s], ex)
            self.ex_np.append(ex)
            self.ex_next.append(a["ex_next"][s][pos])
            self.ex_dist.append(a["ex_dist"][s][pos])
            self.ex_t.append(torch.from_numpy(ex))
            self.ex_max_dist[s] = self.ex_dist[s].max() if len(ex) else -(1 << 40)
            deny = np.unique(a["deny_tok"][s][a["deny_valid"][s]]) if a["deny_valid"][s].any() else np.zeros(0, np.int64)
            self.deny_np.append(deny)
            self.deny_t.append(torch.from_numpy(deny))


def _rows(states: np.ndarray) -> list[tuple[int, torch.Tensor]]:
    if len(states) == 1:
        return [(int(states[0]), torch.zeros(1, dtype=torch.int64))]
    return [(int(u), torch.from_numpy(np.nonzero(states == u)[0])) for u in np.unique(states)]


def _groups(c: BatchConstraint) -> list[tuple[int, torch.Tensor]]:
    """Rows grouped by state; computed once per step (mask and advance share it)."""
    if c.host_groups is None or c.host_groups[0] is not c.state:
        c.host_groups = (c.state, _rows(c.state.numpy()))
    return c.host_groups[1]


def mask_host(c: BatchConstraint, scores: torch.Tensor) -> torch.Tensor:
    """A state with one row writes into that row; rows sharing a state are batched into
    indexed ops on the flattened scores: one fill of all narrow rows, one gather/put of what
    they keep, one fill of everything the wide rows forbid."""
    work = scores if scores.is_contiguous() else scores.contiguous()
    flat, width = work.view(-1), work.shape[1]
    dt: DeviceTables = c.dt
    h: HostLists = dt.host_lists
    states = c.state.numpy()
    remaining = c.budget - int(c.step)
    forbid: list[torch.Tensor] = []
    narrow_rows: list[torch.Tensor] = []
    keep: list[torch.Tensor] = []
    for u, rows in _groups(c):
        thr = max(int(h.dist[u]) - 1, remaining - 1)
        over = h.ex_max_dist[u] > thr
        if h.default_dist[u] <= thr:  # wide: forbid the deny list (and explicit tokens over budget)
            cols = torch.cat([h.deny_t[u], torch.from_numpy(h.ex_np[u][h.ex_dist[u] > thr])]) if over else h.deny_t[u]
            if not cols.numel():
                continue
            if len(rows) == 1:
                work[int(rows[0])].index_fill_(0, cols, NEG_INF)
            else:
                forbid.append((rows[:, None] * width + cols[None, :]).view(-1))
        else:  # narrow: keep only the explicit tokens within budget
            cols = torch.from_numpy(h.ex_np[u][h.ex_dist[u] <= thr]) if over else h.ex_t[u]
            if len(rows) == 1:
                row = work[int(rows[0])]
                kept = row.index_select(0, cols)
                row.fill_(NEG_INF)
                row.index_copy_(0, cols, kept)
            else:
                narrow_rows.append(rows)
                keep.append((rows[:, None] * width + cols[None, :]).view(-1))
    if narrow_rows:
        kept_at = torch.cat(keep)
        kept = flat.index_select(0, kept_at)
        _fill_rows(work, torch.cat(narrow_rows).numpy())
        flat.index_copy_(0, kept_at, kept)
    rows_n = np.nonzero(h.has_numbers[states])[0]
    if len(rows_n):
        thr = np.maximum(h.dist[states[rows_n]] - 1, remaining - 1)
        toks, ok = number_ok(NUMPY, h.numbers, _subset(c, rows_n), states[rows_n], thr)
        r, k = np.nonzero(~ok)
        if len(r):
            forbid.append(torch.from_numpy(rows_n[r] * width + toks[r, k]))
    if forbid:
        flat.index_fill_(0, torch.cat(forbid) if len(forbid) > 1 else forbid[0], NEG_INF)
    if work is not scores:
        scores.copy_(work)
    return scores


def _fill_rows(scores: torch.Tensor, rows: np.ndarray) -> None:
    """-inf over whole rows, one contiguous fill per run of consecutive rows (``index_fill_``
    along dim 0 is several times slower than filling contiguous memory)."""
    if len(rows) == 1:
        scores[int(rows[0])].fill_(NEG_INF)
        return
    rows = np.sort(rows)
    cut = np.nonzero(np.diff(rows) != 1)[0]
    starts = np.concatenate((rows[:1], rows[cut + 1])).tolist()
    ends = (np.concatenate((rows[cut], rows[-1:])) + 1).tolist()
    for a, b in zip(starts, ends):
        scores[a:b].fill_(NEG_INF)


def advance_host(c: BatchConstraint, tokens: torch.Tensor, active: torch.Tensor | None) -> None:
    dt: DeviceTables = c.dt
    h: HostLists = dt.host_lists
    states = c.state.numpy()
    toks = tokens.to(torch.int64).numpy()
    nxt = np.empty_like(states)
    for u, rows_t in _groups(c):
        rows = rows_t.numpy()
        t = toks[rows]
        ex = h.ex_np[u]
        pos = np.minimum(np.searchsorted(ex, t), max(len(ex) - 1, 0))
        hit = (ex[pos] == t) if len(ex) else np.zeros(len(rows), bool)
        step = np.where(hit, h.ex_next[u][pos] if len(ex) else 0, h.default_next[u])
        deny = h.deny_np[u]
        if len(deny):
            dpos = np.minimum(np.searchsorted(deny, t), len(deny) - 1)
            step = np.where(deny[dpos] == t, dt.tables.dead, step)
        nxt[rows] = np.where(t >= dt.tables.vocab_size, dt.tables.dead, step)
    rows_n = np.nonzero(h.has_numbers[states])[0]
    if len(rows_n):
        st = states[rows_n]
        t = toks[rows_n]
        num = h.numbers.tok[st]
        pos = np.minimum((num < t[:, None]).sum(1), num.shape[1] - 1)  # searchsorted on each sorted row
        hit = (num[np.arange(len(st)), pos] == t) & h.numbers.valid[st, pos]
        new = advance_numbers(NUMPY, h.numbers, _subset(c, rows_n), st, dt.tables.arrays["slot"][st], pos, hit)
        for name in ("I", "n", "f", "F", "slots"):
            getattr(c, name).numpy()[rows_n] = getattr(new, name)
    new = torch.from_numpy(nxt)
    c.state = new if active is None else torch.where(active, new, c.state)
    c.step += 1


def _subset(c: BatchConstraint, rows: np.ndarray) -> Registers:
    """numpy copies of the registers of ``rows`` (the tensors are CPU tensors)."""
    return Registers(c.I.numpy()[rows], c.n.numpy()[rows], c.f.numpy()[rows], c.F.numpy()[rows], c.slots.numpy()[rows],
                     c.hi.numpy()[rows])
