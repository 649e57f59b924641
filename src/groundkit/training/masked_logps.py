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


def chunk_rows(width: int, chunk_bytes: int = CHUNK_BYTES) -> int:
    return max(1, chunk_bytes // (4 * width))


class _Chunks:
    """Positions (row-major over (B, T)) in chunks of consecutive rows of one sequence."""

    def __init__(self, logits: torch.Tensor, offset: int, steps: int, rows: int):
        self.logits, self.offset, self.steps, self.rows = logits, offset, steps, rows

    def __iter__(self):
        for b in range(self.logits.shape[0]):
            for t0 in range(0, self.steps, self.rows):
                t1 = min(t0 + self.rows, self.steps)
                yield b, t0, t1, self.logits[b, self.offset + t0:self.offset + t1]


def _scaled(z: torch.Tensor, scale: float) -> torch.Tensor:
    """float32 logits times ``scale`` (a fresh chunk temporary: the input is never written)."""
    return z.float() * scale if scale != 1.0 or z.dtype != torch.float32 else z.clone()


def _chunk_forward(zs: torch.Tensor, mask: Any, ids: torch.Tensor, entropy: bool) -> dict[str, torch.Tensor]:
    """Masked normaliser, entropy and target log-prob of one chunk's rows (see the module doc)."""
    lse_all = torch.logsumexp(zs, -1)
    cols, counted = mask.columns()
    zg = zs.gather(1, cols)
    narrow = mask.narrow
    # narrow: logsumexp over the allowed columns
    zn = torch.where(counted & narrow[:, None], zg, torch.full_like(zg, NEG_INF))
    lse_n = torch.logsumexp(zn, -1)
    # wide: full normaliser less the forbidden mass
    a = zg - lse_all[:, None]
    q = torch.where(counted & ~narrow[:, None], a.exp(), torch.zeros_like(a))
    p_f = q.sum(-1).clamp_max(1.0)
    c = torch.log1p(-p_f)
    lse_m = torch.where(narrow, lse_n, lse_all + c)
    out = {"lse_all": lse_all, "lse_m": lse_m, "z_t": zs.gather(1, ids[:, None]).squeeze(1),
           "fallback": ~narrow & (p_f > FALLBACK_MASS)}
    if entropy:
        zs.sub_(lse_all[:, None]).clamp_(min=LOG_FLOOR)  # log-softmax of the full row, in place
        s_all = zs.exp().mul_(zs).sum(-1)  # sum p log p
        s_f = (q * torch.where(q > 0, a, torch.zeros_like(a))).sum(-1)
        h_w = c - (s_all - s_f) / (1.0 - p_f)
        finite = torch.isfinite(lse_n)
        b = torch.where(counted & narrow[:, None] & finite[:, None], zg - torch.where(finite, lse_n, 0.0)[:, None],
                        torch.full_like(zg, NEG_INF))
        pb = b.exp()
        h_n = -(pb * torch.where(pb > 0, b, torch.zeros_like(b))).sum(-1)
        out["entropy"] = torch.where(narrow, h_n, h_w)
    return out


def _exact_rows(zs: torch.Tensor, mask: Any, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(lse_m, entropy, z_t) of rows by masking them densely (the fallback)."""
    z_t = zs.gather(1, ids[:, None]).squeeze(1)
    mask.mask_(zs)
    lse = torch.logsumexp(zs, -1)
    logp = zs - lse[:, None]
    p = logp.exp()
    h = -(p * torch.where(p > 0, logp, torch.zeros_like(logp))).sum(-1)
    return lse, torch.where(torch.isfinite(lse), h, torch.zeros_like(h)), z_t


class MaskedLogProbs(torch.autograd.Function):
    """``(logps, entropy, violations)`` of ``ids`` (B, T) under ``replay`` 's masks, from
    ``logits[:, offset:offset + T]`` times ``scale``; the gradient goes to the whole ``logits``."""

    @staticmethod
    def forward(ctx: Any, logits: torch.Tensor, ids: torch.Tensor, valid: torch.Tensor, replay: ReplayedStates,
                offset: int, scale: float, compute_entropy: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        ctx.set_materialize_grads(False)
        batch, steps = ids.shape
        width = logits.shape[-1]
        dev = logits.device
        n = batch * steps
        flat_ids = ids.reshape(n)
        lse_all = torch.empty(n, device=dev)
        lse_m = torch.empty(n, device=dev)
        z_t = torch.empty(n, device=dev)
        ent = torch.zeros(n, device=dev)
        fallback = torch.zeros(n, dtype=torch.bool, device=dev)
        allowed = torch.zeros(n, dtype=torch.bool, device=dev)
        for b, t0, t1, z in _Chunks(logits, offset, steps, chunk_rows(width)):
            pos = torch.arange(b * steps + t0, b * steps + t1, device=dev)
            mask = replay.mask(pos, width)
            with torch.no_grad():
                o = _chunk_forward(_scaled(z, scale), mask, flat_ids[pos], compute_entropy)
            sl = slice(b * steps + t0, b * steps + t1)
            lse_all[sl], lse_m[sl], z_t[sl], fallback[sl] = o["lse_all"], o["lse_m"], o["z_t"], o["fallback"]
            allowed[sl] = mask.allows(flat_ids[pos])
            if compute_entropy:
                ent[sl] = o["entropy"]
        flat_valid = valid.reshape(n).bool()
        redo = torch.nonzero(fallback & flat_valid).flatten()  # rare: one host read per call
        rows = chunk_rows(width)
        for k in range(0, redo.numel(), rows):
            pos = redo[k:k + rows]
            zs = logits[pos // steps, offset + pos % steps]
            with torch.no_grad():
                lse, h, _ = _exact_rows(_scaled(zs, scale), replay.mask(pos, width), flat_ids[pos])
            lse_m[pos] = lse
            ent[pos] = h
        bad = flat_valid & ~allowed
        logps = torch.where(bad, z_t - lse_all, z_t - lse_m).masked_fill(~flat_valid, 0.0)
        entropy = torch.where(torch.isfinite(ent), ent, torch.zeros_like(ent)).masked_fill(~flat_valid, 0.0)
        # for the backward pass: an empty mask (nothing allowed) has probability 0 everywhere
        lse_b = torch.where(torch.isneginf(lse_m) | torch.isnan(lse_m), torch.full_like(lse_m, math.inf), lse_m)
        ctx.save_for_backward(logits, flat_ids, flat_valid, lse_b, lse_all, entropy, bad)
        ctx.replay, ctx.offset, ctx.scale, ctx.steps = replay, offset, scale, steps
        ctx.mark_non_differentiable(bad)
        return logps.view(batch, steps), entropy.view(batch, steps), bad.view(batch, steps)

    @staticmethod
    def backward(ctx: Any, g_logp: torch.Tensor | None, g_ent: torch.Tensor | None, _: Any) -> tuple[Any, ...]:
        logits, ids, valid, lse_m, lse_all, entropy, bad = ctx.saved_tensors
        replay, offset, scale, steps = ctx.replay, ctx.offset, ctx.scale, ctx.steps
        width = logits.shape[-1]
        grad = torch.empty_like(logits)
        grad[:, :offset].zero_()
        grad[:, offset + steps:].zero_()
        zero = torch.zeros_like(lse_m)
        gl = zero if g_logp is None else g_logp.reshape(-1).float() * valid
        gh = zero if g_ent is None else g_ent.reshape(-1).float() * valid
        in_place = logits.dtype == torch.float32
        for b, t0, t1, z in _Chunks(logits, offset, steps, chunk_rows(width)):
            sl = slice(b * steps + t0, b * steps + t1)
            pos = torch.arange(sl.start, sl.stop, device=logits.device)
            out = grad[b, offset + t0:offset + t1]
            g = out.copy_(z).mul_(scale) if in_place else z.float() * scale
            replay.mask(pos, width).mask_(g)
            g.sub_(lse_m[sl, None])  # log p under the mask, -inf where forbidden
            p = g.exp()
            g.clamp_(min=LOG_FLOOR)  # finite where p underflows to 0, so 0 * (log p + H) stays 0
            # d logp_t / dz = onehot - p ; d H / dz = -p (log p + H)
            g.add_(entropy[sl, None]).mul_(gh[sl, None]).add_(gl[sl, None]).mul_(p).neg_()
            g.scatter_add_(1, ids[sl, None], gl[sl, None])
            rows = torch.nonzero(bad[sl]).flatten()
            if rows.numel():  # a forbidden token: its log-prob is the unmasked one
                full = torch.softmax(z[rows].float() * scale, -1)
                g[rows] += gl[sl][rows, None] * (p[rows] - full)
            g.mul_(scale)
            if not in_place:
                out.copy_(g)
        return grad, None, None, None, None, None, None


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
