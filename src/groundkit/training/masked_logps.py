"""Log-probs and entropies of the replayed (masked) distribution without a (B, T, V) mask or
masked copy, at the memory of an unconstrained chunked log-softmax.

For a position with logits ``z`` (temperature applied) and replayed mask (see
:class:`groundkit.decoding.replay.SparseMask`), the masked log-normaliser is

* narrow state: ``logsumexp(z[allowed])``, a gather of the few allowed columns;
* wide state: ``lse_all + log1p(-p_F)`` with ``p_F = sum(exp(z[forbidden] - lse_all))``,
  the full normaliser corrected by the forbidden tokens' mass. When the forbidden tokens
  hold more than half the mass the correction loses digits, so those positions (rare) are
  recomputed exactly on their masked row.

The entropy follows from the same sums: ``H = lse_m - E_m[z]`` with, for a wide state,
``E_m`` from the full distribution's moments less the forbidden tokens'. Positions are
processed a few rows at a time (:data:`CHUNK_BYTES` of float32 per temporary); the backward
pass recomputes each chunk's masked softmax into the gradient buffer, so the peak is one
(B, T, V) gradient plus a few chunks, as for stock TRL. A token the mask forbids (generation
and replay disagree) keeps its unmasked log-prob and is reported, so one bad row cannot turn
the loss into NaN.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from groundkit.decoding.replay import ReplayedStates

CHUNK_BYTES = 1 << 25
"""Bytes of one float32 chunk temporary (rows x vocabulary): 32 MiB, about TRL's entropy chunk."""
FALLBACK_MASS = 0.5
"""Forbidden mass above which a wide position's normaliser is recomputed on its masked row."""
NEG_INF = float("-inf")
LOG_FLOOR = -200.0
"""A log-probability below which float32 ``exp`` is 0: the floor keeps ``p * log p`` finite."""


@dataclass
class MaskedResult:
    """Per-position outputs (B, T): log-probs, entropies (or None) and the positions whose
    token the replayed mask forbids (counted as violations, log-prob left unmasked)."""

    logps: torch.Tensor
    entropy: torch.Tensor | None
    violations: torch.Tensor

    @property
    def n_violations(self) -> int:
        return int(self.violations.sum())


DEVICE_CHUNK_BYTES = 1 << 28
"""On a GPU: 256 MiB temporaries, so each chunk's kernels (and the LM head's GEMM) stay large."""


def chunk_bytes_for(device: torch.device) -> int:
    return CHUNK_BYTES if device.type == "cpu" else DEVICE_CHUNK_BYTES


def chunk_rows(width: int, chunk_bytes: int = CHUNK_BYTES) -> int:
    """Rows per chunk so that one float32 temporary of ``width`` columns takes ``chunk_bytes``."""
    return max(1, chunk_bytes // (4 * width))


def _scaled(z: torch.Tensor, scale: float) -> torch.Tensor:
    """float32 logits times ``scale``: ``z`` itself when there is nothing to do (never written)."""
    return z.float() * scale if scale != 1.0 or z.dtype != torch.float32 else z


def _chunk_forward(zs: torch.Tensor, mask: Any, ids: torch.Tensor, entropy: bool) -> dict[str, torch.Tensor]:
    """Masked normaliser, entropy and target log-prob of one chunk's rows (see the module doc)."""
    lse_all = torch.logsumexp(zs, -1)
    cols, counted = mask.columns()
    zg = zs.gather(1, cols)
    narrow = mask.narrow
    # narrow: logsumexp over the allowed columns
    zn = torch.where(counted & narrow[:, None], zg, torch.full_like(zg, NEG_INF))
    lse_n = torch.logsumexp(zn, -1)
    # wide: full normaliser less the forbidden mass (listed columns, then the tail slice)
    a = zg - lse_all[:, None]
    q = torch.where(counted & ~narrow[:, None], a.exp(), torch.zeros_like(a))
    p_f = q.sum(-1)
    s_f = (q * torch.where(q > 0, a, torch.zeros_like(a))).sum(-1) if entropy else None
    if zs.shape[1] > mask.vocab_size:
        a_tail = zs[:, mask.vocab_size:] - lse_all[:, None]
        q_tail = a_tail.exp()
        wide = (~narrow & ~mask.free).to(zs.dtype)
        p_f = p_f + wide * q_tail.sum(-1)
        if s_f is not None:
            s_f = s_f + wide * (q_tail * a_tail.clamp_min(LOG_FLOOR)).sum(-1)
        del a_tail, q_tail
    p_f = p_f.clamp_max(1.0)
    c = torch.log1p(-p_f)
    lse_m = torch.where(narrow, lse_n, lse_all + c)
    out = {"lse_all": lse_all, "lse_m": lse_m, "z_t": zs.gather(1, ids[:, None]).squeeze(1),
           "fallback": ~narrow & (p_f > FALLBACK_MASS)}
    if entropy:
        logp = (zs - lse_all[:, None]).clamp_(min=LOG_FLOOR)  # the full row's log-softmax
        s_all = logp.exp().mul_(logp).sum(-1)  # sum p log p (torch's sum, not a float32 BLAS dot: 1e-3 off at 152k terms)
        del logp
        h_w = c - (s_all - s_f) / (1.0 - p_f)
        finite = torch.isfinite(lse_n)
        b = torch.where(counted & narrow[:, None] & finite[:, None], zg - torch.where(finite, lse_n, 0.0)[:, None],
                        torch.full_like(zg, NEG_INF))
        pb = b.exp()
        h_n = -(pb * torch.where(pb > 0, b, torch.zeros_like(b))).sum(-1)
        out["entropy"] = torch.where(narrow, h_n, h_w)
    return out


def _exact_rows(zs: torch.Tensor, mask: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """(lse_m, entropy) of rows by masking them densely (the fallback; ``zs`` is written)."""
    mask.mask_(zs)
    lse = torch.logsumexp(zs, -1)
    logp = zs - lse[:, None]
    p = logp.exp()
    h = -(p * torch.where(p > 0, logp, torch.zeros_like(logp))).sum(-1)
    return lse, torch.where(torch.isfinite(lse), h, torch.zeros_like(h))


class RowSource:
    """Where a masked computation reads its rows of logits: ``n`` rows of ``width`` columns,
    scaled (temperature) float32 copies of a range or a set of rows, and each row's position
    in the replay (negative: a prompt token, nothing masked)."""

    n: int
    width: int
    rows_per_chunk: int

    def ranges(self) -> list[tuple[int, int]]:
        return [(a, min(a + self.rows_per_chunk, self.n)) for a in range(0, self.n, self.rows_per_chunk)]

    def logits(self, start: int, stop: int) -> torch.Tensor:
        """Scaled float32 logits of rows ``start:stop`` (read only: may be the input itself)."""
        raise NotImplementedError

    def logits_at(self, rows: torch.Tensor) -> torch.Tensor:
        """Scaled float32 logits of ``rows``, a fresh tensor the caller may write."""
        raise NotImplementedError

    def positions(self, start: int, stop: int) -> torch.Tensor:
        raise NotImplementedError

    def positions_at(self, rows: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


@dataclass
class Saved:
    """What the backward pass needs per row (the logits themselves are recomputed)."""

    lse_m: torch.Tensor  # masked normaliser; +inf where the mask allows nothing
    entropy: torch.Tensor
    bad: torch.Tensor  # the token is forbidden: its log-prob is the unmasked one
    bad_rows: list[int]  # the same, as host indices (read once with the fallback rows)


def masked_forward(src: RowSource, replay: ReplayedStates, ids: torch.Tensor, valid: torch.Tensor,
                   compute_entropy: bool) -> tuple[torch.Tensor, torch.Tensor, Saved]:
    """(logps, entropy, saved) of the ``src.n`` rows' target ``ids`` under their replayed masks."""
    n, dev = src.n, ids.device
    lse_all, lse_m, z_t, ent = (torch.zeros(n, device=dev) for _ in range(4))
    fallback = torch.zeros(n, dtype=torch.bool, device=dev)
    allowed = torch.zeros(n, dtype=torch.bool, device=dev)
    with torch.no_grad():
        for a, b in src.ranges():
            mask = replay.mask(src.positions(a, b), src.width)
            o = _chunk_forward(src.logits(a, b), mask, ids[a:b], compute_entropy)
            lse_all[a:b], lse_m[a:b], z_t[a:b], fallback[a:b] = o["lse_all"], o["lse_m"], o["z_t"], o["fallback"]
            allowed[a:b] = mask.allows(ids[a:b])
            if compute_entropy:
                ent[a:b] = o["entropy"]
        bad = valid & ~allowed
        # one host read per call: the rare rows to recompute exactly, and the violations
        found = torch.cat([torch.nonzero(fallback & valid), torch.nonzero(bad) + n]).flatten().tolist()
        redo = torch.tensor([r for r in found if r < n], dtype=torch.long, device=dev)
        bad_rows = [r - n for r in found if r >= n]
        for k in range(0, redo.numel(), src.rows_per_chunk):
            rows = redo[k:k + src.rows_per_chunk]
            lse, h = _exact_rows(src.logits_at(rows), replay.mask(src.positions_at(rows), src.width))
            lse_m[rows], ent[rows] = lse, h
    logps = torch.where(bad, z_t - lse_all, z_t - lse_m).masked_fill(~valid, 0.0)
    entropy = torch.where(torch.isfinite(ent), ent, torch.zeros_like(ent)).masked_fill(~valid, 0.0)
    lse_b = torch.where(torch.isneginf(lse_m) | torch.isnan(lse_m), torch.full_like(lse_m, math.inf), lse_m)
    return logps, entropy, Saved(lse_b, entropy, bad, bad_rows)


def masked_grad_(g: torch.Tensor, mask: Any, ids: torch.Tensor, saved: Saved, a: int, b: int, gl: torch.Tensor,
                 gh: torch.Tensor | None) -> torch.Tensor:
    """Rows ``a:b``: ``g`` holds their scaled logits (float32, written in place); returns the
    gradient with respect to them: ``gl * (onehot - p) - gh * p * (log p + H)`` with ``p`` the
    masked distribution (the unmasked one in the log-prob term of a forbidden token). ``gl``
    and ``gh`` (None: no entropy gradient) already carry the caller's chain-rule factor."""
    bad = [r - a for r in saved.bad_rows if a <= r < b]
    full = torch.softmax(g[bad], -1) if bad else None
    mask.mask_(g)
    g.sub_(saved.lse_m[a:b, None])  # log p under the mask, -inf where forbidden
    p_bad = g[bad].exp() if bad else None
    if gh is None:
        g.exp_().mul_(-gl[a:b, None])
    else:
        p = g.exp()
        g.clamp_(min=LOG_FLOOR)  # finite where p underflows to 0, so 0 * (log p + H) stays 0
        g.add_(saved.entropy[a:b, None]).mul_(gh[a:b, None]).add_(gl[a:b, None]).mul_(p).neg_()
    g.scatter_add_(1, ids[a:b, None], gl[a:b, None])
    if full is not None and p_bad is not None:
        g[bad] += gl[a:b][bad, None] * (p_bad - full)
    return g


class _DenseRows(RowSource):
    """Rows ``b * steps + t`` of ``logits[b, offset + t]``."""

    def __init__(self, logits: torch.Tensor, steps: int, offset: int, scale: float):
        self.src, self.steps, self.offset, self.scale = logits, steps, offset, scale
        self.n, self.width = logits.shape[0] * steps, logits.shape[-1]
        self.rows_per_chunk = max(1, min(chunk_rows(self.width, chunk_bytes_for(logits.device)), steps))

    def ranges(self) -> list[tuple[int, int]]:  # chunks never cross a sequence
        return [(b * self.steps + t, b * self.steps + min(t + self.rows_per_chunk, self.steps))
                for b in range(self.src.shape[0]) for t in range(0, self.steps, self.rows_per_chunk)]

    def view(self, start: int, stop: int) -> torch.Tensor:
        b, t = divmod(start, self.steps)
        return self.src[b, self.offset + t:self.offset + t + stop - start]

    def logits(self, start: int, stop: int) -> torch.Tensor:
        return _scaled(self.view(start, stop), self.scale)

    def logits_at(self, rows: torch.Tensor) -> torch.Tensor:
        return self.src[rows // self.steps, self.offset + rows % self.steps].float() * self.scale  # indexing copies

    def positions(self, start: int, stop: int) -> torch.Tensor:
        return torch.arange(start, stop, device=self.src.device)

    def positions_at(self, rows: torch.Tensor) -> torch.Tensor:
        return rows


class MaskedLogProbs(torch.autograd.Function):
    """``(logps, entropy, violations)`` of ``ids`` (B, T) under ``replay`` 's masks, from
    ``logits[:, offset:offset + T]`` times ``scale``; the gradient goes to the whole ``logits``."""

    @staticmethod
    def forward(ctx: Any, logits: torch.Tensor, ids: torch.Tensor, valid: torch.Tensor, replay: ReplayedStates,
                offset: int, scale: float, compute_entropy: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        ctx.set_materialize_grads(False)
        batch, steps = ids.shape
        src = _DenseRows(logits, steps, offset, scale)
        flat_ids, flat_valid = ids.reshape(-1), valid.reshape(-1).bool()
        logps, entropy, saved = masked_forward(src, replay, flat_ids, flat_valid, compute_entropy)
        ctx.save_for_backward(logits, flat_ids, flat_valid)
        ctx.saved, ctx.replay, ctx.offset, ctx.scale, ctx.steps = saved, replay, offset, scale, steps
        bad = saved.bad.view(batch, steps)
        ctx.mark_non_differentiable(bad)
        return logps.view(batch, steps), entropy.view(batch, steps), bad

    @staticmethod
    def backward(ctx: Any, g_logp: torch.Tensor | None, g_ent: torch.Tensor | None, _: Any) -> tuple[Any, ...]:
        logits, ids, valid = ctx.saved_tensors
        offset, steps, scale = ctx.offset, ctx.steps, ctx.scale
        src = _DenseRows(logits, steps, offset, scale)
        grad = torch.empty_like(logits)
        grad[:, :offset].zero_()
        grad[:, offset + steps:].zero_()
        gl, gh = row_grads(g_logp, g_ent, valid, scale)
        in_place = logits.dtype == torch.float32
        for a, b in src.ranges():
            bi, t = divmod(a, steps)
            out = grad[bi, offset + t:offset + t + b - a]
            g = torch.mul(src.view(a, b), scale, out=out) if in_place else src.view(a, b).float() * scale
            masked_grad_(g, ctx.replay.mask(src.positions(a, b), src.width), ids, ctx.saved, a, b, gl, gh)
            if not in_place:
                out.copy_(g)
        return grad, None, None, None, None, None, None


def row_grads(g_logp: torch.Tensor | None, g_ent: torch.Tensor | None, valid: torch.Tensor,
              factor: float) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Per-row incoming gradients (zero on invalid rows) times ``factor``; None: no entropy term."""
    gl = torch.zeros(valid.shape, device=valid.device) if g_logp is None else g_logp.reshape(-1).float() * valid * factor
    gh = None if g_ent is None else g_ent.reshape(-1).float() * valid * factor
    return gl, gh


def sparse_masked_logps(logits: torch.Tensor, completion_ids: torch.Tensor, completion_mask: torch.Tensor,
                        replay: ReplayedStates, compute_entropy: bool = True, temperature: float = 1.0,
                        offset: int = 0) -> MaskedResult:
    """Masked log-probs (and entropies) of ``completion_ids`` (B, T), predicted by
    ``logits[:, offset:offset + T]`` divided by ``temperature``; ``replay`` from
    :func:`groundkit.decoding.replay.replay_states` over the same ids. No (B, T, V) tensor is
    created besides the gradient of ``logits``."""
    logps, entropy, bad = MaskedLogProbs.apply(logits, completion_ids, completion_mask, replay, offset, 1.0 / temperature,
                                               compute_entropy)
    return MaskedResult(logps, entropy if compute_entropy else None, bad)
