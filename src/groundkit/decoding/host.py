"""The CPU step: the same masks and states as the tensor step, computed per row on the host.

On a GPU the step must stay on the device (no syncs), so it is pure tensor operations over
padded per-state lists. On the CPU reading the state is free and every torch or numpy call
has a fixed cost of microseconds, which dominates: so each row pays exactly what its state
forbids (a wide state: one indexed write) or keeps (a narrow state: a gather, the row's fill
with -inf, a scatter), the fills of consecutive narrow rows are merged into one, and the
transition is a dict lookup. Number checks run per row in Python integers
(:mod:`groundkit.decoding.scalar`) for a few rows, and as one numpy pass
(:mod:`groundkit.decoding.numeric`) for many. ``tests/test_decoding_host.py`` checks that
every path gives the tensor step's masks and states.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np
import torch

from groundkit.decoding.numeric import NUMPY, NumberTables, Registers, number_ok
from groundkit.decoding.scalar import ScalarLists, row_registers

if TYPE_CHECKING:
    from groundkit.decoding.runtime import BatchConstraint, DeviceTables

NEG_INF = float("-inf")
NUMPY_FLOATS = (torch.float32, torch.float64, torch.float16)
SCALAR_NUMBER_ROWS = 6
"""Rows in number states at or below which a step checks numbers per row in Python; above,
one numpy pass (whose ~150 operations cost more than a few rows of Python)."""


class HostLists:
    """Unpadded per-state lists: numpy arrays of columns, Python lists of per-state scalars."""

    def __init__(self, dt: DeviceTables):
        self.dead, self.vocab_size = dt.tables.dead, dt.tables.vocab_size
        self.slot_l = dt.tables.arrays["slot"].tolist()
        a = dt.tables.arrays
        n = a["dist"].shape[0]
        self.dist, self.default_dist, self.default_next = a["dist"], a["default_dist"], a["default_next"]
        self.has_numbers = a["num_valid"].any(1)
        self.numbers = NumberTables(dt.num_pack.numpy(), a["num_tok"], a["num_valid"], dt.num_fields, a["in_number"], a["above"],
                                    a["axis"], a["capped"].astype(np.int64), dt.pow10.numpy(), dt.tables.max_decimals,
                                    dt.tables.number_chars)
        self.ex_np, self.ex_next, self.ex_dist, self.deny_np = [], [], [], []
        self.ex_max_dist = np.zeros(n, np.int64)
        for s in range(n):
            valid = a["ex_valid"][s]
            ex = np.unique(a["ex_tok"][s][valid]) if valid.any() else np.zeros(0, np.int64)
            pos = np.searchsorted(a["ex_tok"][s], ex)
            self.ex_np.append(ex)
            self.ex_next.append(a["ex_next"][s][pos])
            self.ex_dist.append(a["ex_dist"][s][pos])
            self.ex_max_dist[s] = self.ex_dist[s].max() if len(ex) else -(1 << 40)
            deny = np.unique(a["deny_tok"][s][a["deny_valid"][s]]) if a["deny_valid"][s].any() else np.zeros(0, np.int64)
            self.deny_np.append(deny)
        # Python lists of the per-state scalars: indexing them costs a fraction of numpy's
        self.dist_l, self.default_dist_l = self.dist.tolist(), self.default_dist.tolist()
        self.ex_max_dist_l, self.has_numbers_l = self.ex_max_dist.tolist(), self.has_numbers.tolist()

    @cached_property
    def scalar(self) -> ScalarLists:
        """Python lists and dicts for the per-row path (built on first use)."""
        return ScalarLists(self)


def mask_host(c: BatchConstraint, scores: torch.Tensor) -> torch.Tensor:
    """Set what each row may not take to -inf, in place; returns ``scores``."""
    work = scores if scores.is_contiguous() else scores.contiguous()
    h: HostLists = c.dt.host_lists
    rows = _Rows(work)
    remaining = c.budget - c.steps_taken
    states = c.state.tolist()
    thrs = [max(h.dist_l[s] - 1, remaining - 1) for s in states]
    numbers = _number_forbids(c, states, thrs, work.shape[1])  # before the fills evict the caches
    narrow, kept, wide = [], [], []
    for row, (s, thr) in enumerate(zip(states, thrs)):
        is_wide, cols = state_columns(h, s, thr)
        if is_wide:
            wide.append((row, cols))
        else:
            narrow.append(row)
            kept.append((row, cols, rows.take(row, cols)))
    fill_rows(work, narrow)
    for row, cols, values in kept:
        rows.put(row, cols, values)
    for row, cols in wide:
        rows.forbid(row, cols)
    if len(numbers):
        rows.forbid_flat(numbers)
    if work is not scores:
        scores.copy_(work)
    return scores


def state_columns(h: HostLists, s: int, thr: int) -> tuple[bool, np.ndarray]:
    """(wide, columns) for state ``s``: a wide state forbids the columns (its deny list and
    explicit tokens over budget), a narrow one keeps them (its explicit tokens within budget)."""
    over = h.ex_max_dist_l[s] > thr
    if h.default_dist_l[s] <= thr:
        return True, np.concatenate((h.deny_np[s], h.ex_np[s][h.ex_dist[s] > thr])) if over else h.deny_np[s]
    return False, h.ex_np[s][h.ex_dist[s] <= thr] if over else h.ex_np[s]


class _Rows:
    """Indexed reads and writes on the rows of contiguous scores: through a numpy view where
    numpy has the dtype (a third of torch's cost per call), else torch (bfloat16)."""

    def __init__(self, work: torch.Tensor):
        self.work = work
        self.view = work.numpy() if work.dtype in NUMPY_FLOATS else None

    def take(self, row: int, cols: np.ndarray) -> np.ndarray | torch.Tensor:
        if self.view is not None:
            return self.view[row, cols]
        return self.work[row].index_select(0, torch.from_numpy(cols))

    def put(self, row: int, cols: np.ndarray, values: np.ndarray | torch.Tensor) -> None:
        if self.view is not None:
            self.view[row, cols] = values
        else:
            self.work[row].index_copy_(0, torch.from_numpy(cols), values)

    def forbid(self, row: int, cols: np.ndarray | list[int]) -> None:
        if not len(cols):
            return
        if self.view is not None:
            self.view[row, cols] = NEG_INF
        else:
            self.work[row].index_fill_(0, torch.as_tensor(cols, dtype=torch.int64), NEG_INF)

    def forbid_flat(self, at: np.ndarray) -> None:
        """-inf at flat positions ``row * width + column``."""
        if self.view is not None:
            self.view.reshape(-1)[at] = NEG_INF
        else:
            self.work.view(-1).index_fill_(0, torch.from_numpy(at), NEG_INF)


def fill_rows(scores: torch.Tensor, rows: list[int]) -> None:
    """-inf over whole rows (ascending), one fill per run of consecutive rows: a bigger fill
    is one call, and torch splits it over its threads."""
    start = 0
    for i in range(1, len(rows) + 1):
        if i == len(rows) or rows[i] != rows[i - 1] + 1:
            scores[rows[start] : rows[i - 1] + 1].fill_(NEG_INF)
            start = i


def _number_forbids(c: BatchConstraint, states: list[int], thrs: list[int], width: int) -> np.ndarray:
    """Flat positions (``row * width + token``) of the number tokens each row may not take."""
    h: HostLists = c.dt.host_lists
    number_rows = [row for row, s in enumerate(states) if h.has_numbers_l[s]]
    if len(number_rows) <= SCALAR_NUMBER_ROWS:
        regs = _numpy_registers(c)
        out: list[int] = []
        for row in number_rows:
            out.extend(row * width + t for t in h.scalar.forbidden_numbers(states[row], row_registers(*regs, row), thrs[row]))
        return np.array(out, dtype=np.int64)
    at = np.array(number_rows)
    toks, ok = number_ok(NUMPY, h.numbers, _subset(c, at), np.array(states)[at], np.array(thrs)[at])
    r, k = np.nonzero(~ok)
    return at[r] * width + toks[r, k]


def advance_host(c: BatchConstraint, tokens: torch.Tensor, active: torch.Tensor | None) -> None:
    """Every row's next state (a dict lookup) and number registers (Python integers)."""
    h: HostLists = c.dt.host_lists
    sl = h.scalar
    regs = None
    nxt = []
    for row, (s, t) in enumerate(zip(c.state.tolist(), tokens.tolist())):
        nxt.append(sl.next_state(s, t))
        if h.has_numbers_l[s]:
            regs = regs or _numpy_registers(c)
            I, n, f, F, slots, _ = regs  # noqa: E741 - numpy views of the registers, written in place
            r = row_registers(*regs, row)
            sl.advance_numbers(s, h.slot_l[s], r, t)
            I[row], n[row], f[row], F[row] = r.I, r.n, r.f, r.F
            slots[row] = r.slots
    state = c.state.numpy()  # in place, as the tensor step does
    if active is None:
        state[:] = nxt
    else:
        live = active.cpu().numpy()
        state[live] = np.array(nxt, dtype=np.int64)[live]
    c.steps_taken += 1


def _numpy_registers(c: BatchConstraint) -> tuple[np.ndarray, ...]:
    """numpy views of (I, n, f, F, slots, hi): CPU tensors, so writes go through."""
    return c.I.numpy(), c.n.numpy(), c.f.numpy(), c.F.numpy(), c.slots.numpy(), c.hi.numpy()


def _subset(c: BatchConstraint, rows: np.ndarray) -> Registers:
    """numpy copies of the registers of ``rows`` (the tensors are CPU tensors)."""
    return Registers(c.I.numpy()[rows], c.n.numpy()[rows], c.f.numpy()[rows], c.F.numpy()[rows], c.slots.numpy()[rows],
                     c.hi.numpy()[rows])
