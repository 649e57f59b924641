"""The device step reads nothing back to the host: it runs on PyTorch's ``meta`` device, where
tensors have shapes but no data, so any ``.item()``, ``.tolist()``, ``bool(tensor)``,
``.cpu()`` or data-dependent shape (``nonzero``, boolean indexing) raises. On a GPU each of
those would be a device-to-host sync; ``benchmarks/decoding_cuda.py`` checks the same on CUDA
with ``torch.cuda.set_sync_debug_mode("error")``."""

from __future__ import annotations

import pytest
import torch

from groundkit.backbones.tokenizers import qwen_tokenizer, sentencepiece_tokenizer
from groundkit.decoding import make_processor, replay_mask
from groundkit.frames import ImageSize
from groundkit.text.grammar import get_grammar

META = torch.device("meta")


def test_meta_tensors_refuse_host_reads():
    """The premise: each kind of host read raises on meta."""
    x = torch.zeros(3, dtype=torch.long, device=META)
    for read in (lambda: x[0].item(), x.tolist, lambda: bool(x[0] > 0), x.nonzero, x.cpu, lambda: x[x > 0]):
        with pytest.raises((RuntimeError, NotImplementedError)):
            read()


@pytest.mark.parametrize(("dialect", "frame"), [("groundkit", None), ("qwen-json", "abs-resized"), ("molmo", None), ("qwen2vl", "unit")])
@pytest.mark.parametrize("make", [qwen_tokenizer, sentencepiece_tokenizer], ids=["qwen2", "sentencepiece"])
def test_processor_steps_and_replay_run_on_meta(make, dialect, frame):
    tok = make()
    grammar = get_grammar(dialect, frame)
    rows, steps, prompt = 4, 6, 5
    sizes = [ImageSize(300 + 40 * i, 200 + 30 * i) for i in range(rows)]
    proc = make_processor(tok, grammar, sizes, max_new_tokens=steps)
    vocab = len(tok) + 8
    for k in range(steps):  # what generate() does: one call per new token, guard on
        scores = torch.empty((rows, vocab), device=META)
        out = proc(torch.zeros((rows, prompt + k), dtype=torch.long, device=META), scores)
        assert out.device == META and out.shape == (rows, vocab)
    assert proc.constraint is not None and proc.constraint.state.device == META
    logits = torch.empty((rows, steps, vocab), device=META, requires_grad=True)
    ids = torch.zeros((rows, steps), dtype=torch.long, device=META)
    masked = replay_mask(tok, grammar, logits, ids, sizes, steps, completion_mask=torch.ones((rows, steps), device=META))
    assert masked.shape == logits.shape and masked.requires_grad
