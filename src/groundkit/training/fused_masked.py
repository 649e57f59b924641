"""Mask-consistent log-probs through TRL's fused LM head: no (B, T, V) logits at all.

TRL 1.16's GRPOTrainer patches the model with ``add_fused_lm_head``: called with
``fused_lm_head=True`` the forward runs the backbone and hands the hidden states, the LM head
and its settings (temperature, final-logit softcapping, logit scale) to a chunked autograd
function that returns per-token log-probs and entropies. :func:`masked_lm_head` lets TRL's
forward do everything it does (PEFT, FSDP gathering, autocast, the label shift, the mapping
of rows back to positions) and swaps only that function, for the duration of one call, with
:class:`MaskedLMHead`: the same contract, under the replayed masks, computed by
:mod:`groundkit.training.masked_logps` on logits projected a few rows at a time and
recomputed in the backward pass.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch

from groundkit.decoding.replay import ReplayedStates
from groundkit.errors import GroundkitError
from groundkit.training.masked_logps import (
    RowSource,
    Saved,
    chunk_rows,
    masked_forward,
    masked_grad_,
    row_grads,
)

_TRL_NAME = "_ChunkedLogProbFunction"


class _HeadRows(RowSource):
    """Rows ``hidden[i] @ weight.T (+ bias)``, transformed as the model's head does, divided
    by the temperature; row ``i`` is replay position ``positions[i]``."""

    def __init__(self, hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, head: dict[str, Any],
                 positions: torch.Tensor):
        self.hidden, self.weight, self.bias, self.head, self.pos = hidden, weight, bias, head, positions
        self.n, self.width = hidden.shape[0], weight.shape[0]
        self.rows_per_chunk = chunk_rows(self.width, head["chunk_bytes"])

    def project(self, h: torch.Tensor) -> torch.Tensor:
        """The pre-transform logits ``y`` (float32) of hidden rows ``h``."""
        y = (h.to(self.weight.dtype) @ self.weight.t()).float()
        return y if self.bias is None else y.add_(self.bias.float())

    def transform_(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``y`` -> scaled logits in place; returns them and ``tanh`` (for the softcap's derivative)."""
        y.mul_(self.head["logit_scale"])
        t = None
        cap = self.head["softcap"]
        if cap is not None:
            t = y.div_(cap).tanh_()
            y = t.mul(cap)
        return y.mul_(1.0 / self.head["temperature"]), t

    def logits(self, start: int, stop: int) -> torch.Tensor:
        return self.transform_(self.project(self.hidden[start:stop]))[0]

    def logits_at(self, rows: torch.Tensor) -> torch.Tensor:
        return self.transform_(self.project(self.hidden[rows]))[0]

    def positions(self, start: int, stop: int) -> torch.Tensor:
        return self.pos[start:stop]

    def positions_at(self, rows: torch.Tensor) -> torch.Tensor:
        return self.pos[rows]


class MaskedLMHead(torch.autograd.Function):
    """TRL's ``ChunkedLogProbFunction`` contract (hidden [N, H], weight [V, H], bias, targets
    [N], temperature, chunk size, softcapping, logit scale, outputs) -> (log-probs, entropy or
    None, None, None, None), under the masks of ``call.replay`` at ``call.positions``."""

    @staticmethod
    def forward(ctx: Any, hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, targets: torch.Tensor,
                call: MaskedCall, temperature: float, softcap: float | None, logit_scale: float,
                compute_entropy: bool) -> tuple[torch.Tensor, torch.Tensor]:
        ctx.set_materialize_grads(False)
        positions, valid = call.rows(hidden.shape[0])
        head = {"temperature": temperature, "softcap": softcap, "logit_scale": logit_scale, "chunk_bytes": call.chunk_bytes}
        src = _HeadRows(hidden, weight, bias, head, positions)
        logps, entropy, saved = masked_forward(src, call.replay, targets, valid, compute_entropy)
        call.violations = saved.bad
        ctx.save_for_backward(hidden, weight, bias, targets, valid)
        ctx.saved, ctx.head, ctx.replay, ctx.positions = saved, head, call.replay, positions
        return logps, entropy

    @staticmethod
    def backward(ctx: Any, g_logp: torch.Tensor | None, g_ent: torch.Tensor | None) -> tuple[Any, ...]:
        hidden, weight, bias, targets, valid = ctx.saved_tensors
        saved: Saved = ctx.saved
        src = _HeadRows(hidden, weight, bias, ctx.head, ctx.positions)
        need_h, need_w, need_b = ctx.needs_input_grad[:3]
        grad_h = torch.zeros(hidden.shape, device=hidden.device, dtype=torch.float32) if need_h else None
        grad_w = torch.zeros(weight.shape, device=weight.device, dtype=torch.float32) if need_w else None
        grad_b = torch.zeros(bias.shape, device=bias.device, dtype=torch.float32) if need_b and bias is not None else None
        head = ctx.head
        gl, gh = row_grads(g_logp, g_ent, valid, head["logit_scale"] / head["temperature"])  # back through both
        for a, b in src.ranges():
            h = hidden[a:b]
            z, t = src.transform_(src.project(h))
            g = masked_grad_(z, ctx.replay.mask(ctx.positions[a:b], src.width), targets, saved, a, b, gl, gh)
            if t is not None:
                g.mul_(1.0 - t * t)  # and the softcap: d cap * tanh(y / cap) / dy
            if grad_h is not None:
                grad_h[a:b] = (g.to(weight.dtype) @ weight).float()
            if grad_w is not None:
                grad_w.addmm_(g.t(), h.float())
            if grad_b is not None:
                grad_b += g.sum(0)
        return (None if grad_h is None else grad_h.to(hidden.dtype), None if grad_w is None else grad_w.to(weight.dtype),
                None if grad_b is None else grad_b.to(bias.dtype), None, None, None, None, None, None)


class MaskedCall:
    """One fused-head call: the replay, and how TRL's rows map to its positions. TRL scores
    either every shifted position (``B * (L - 1)`` rows) or, on Triton devices, only those
    whose label is not -100 (in row-major order); ``labels`` (B, L) tell which."""

    def __init__(self, replay: ReplayedStates, labels: torch.Tensor, steps: int, chunk_bytes: int):
        self.replay, self.labels, self.steps, self.chunk_bytes = replay, labels, steps, chunk_bytes
        self.violations: torch.Tensor | None = None
        self.called = 0

    def rows(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(positions, valid) of TRL's ``n`` rows; position -1 for a prompt row."""
        self.called += 1
        scored = self.labels[:, 1:] != -100
        batch, width = scored.shape
        first = width - self.steps  # the shifted index of the first completion position
        if n == batch * width:
            b = torch.arange(batch, device=scored.device).repeat_interleave(width)
            j = torch.arange(width, device=scored.device).repeat(batch)
            valid = scored.reshape(-1)
        elif n == int(scored.sum()):
            b, j = scored.nonzero(as_tuple=True)
            valid = torch.ones(n, dtype=torch.bool, device=scored.device)
        else:
            raise GroundkitError(f"mask replay: TRL's fused LM head scored {n} rows, expected {batch * width} or the "
                                 f"{int(scored.sum())} labelled ones (an unsupported TRL version?)")
        t = j - first
        positions = torch.where(t >= 0, b * self.steps + t, torch.full_like(t, -1))
        return positions, valid & (t >= 0)


class _Shim:
    """Stands in for TRL's function class inside one call: ``apply`` with TRL's arguments."""

    def __init__(self, call: MaskedCall):
        self.call = call

    def apply(self, hidden: Any, weight: Any, bias: Any, targets: Any, temperature: float, chunk_size: int,
              final_logit_softcapping: float | None = None, logit_scale: float = 1.0,
              outputs: tuple[str, ...] = ("log_probs",)) -> tuple[Any, ...]:
        unsupported = set(outputs) - {"log_probs", "entropy"}
        if unsupported:
            raise GroundkitError(f"mask-consistent log-probs compute log_probs and entropy, not {sorted(unsupported)}")
        logps, entropy = MaskedLMHead.apply(hidden, weight, bias, targets, self.call, temperature, final_logit_softcapping,
                                            logit_scale, "entropy" in outputs)
        return logps, entropy if "entropy" in outputs else None, None, None, None


def fused_head_available() -> bool:
    """Whether this TRL routes its fused LM head through the function :func:`masked_lm_head` swaps."""
    try:
        import trl.trainer.utils as trl_utils
    except ImportError:
        return False
    return hasattr(trl_utils, _TRL_NAME) and hasattr(trl_utils, "add_fused_lm_head")


@contextlib.contextmanager
def masked_lm_head(call: MaskedCall) -> Iterator[None]:
    """Within the block, TRL's fused LM head computes ``call`` 's masked log-probs."""
    import trl.trainer.utils as trl_utils

    original = getattr(trl_utils, _TRL_NAME)
    setattr(trl_utils, _TRL_NAME, _Shim(call))
    try:
        yield
    finally:
        setattr(trl_utils, _TRL_NAME, original)
