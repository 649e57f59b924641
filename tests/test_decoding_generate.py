"""Tiny random-initialised VLMs generating through ``generate()`` with the grounded processor:
every output is valid; the replayed masks equal the ones generation applied."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

import groundkit as gk
from groundkit.backbones.generation import GenerationRequest, SamplingConfig, generate
from groundkit.decoding import make_processor, replay_mask


def requests(n: int) -> list[GenerationRequest]:
    sizes = [(640, 480), (300, 900), (1200, 200), (64, 64)]
    return [GenerationRequest(Image.new("RGB", sizes[i % 4], (i * 40 % 255, 90, 160)), "How many mugs?", f"r{i}") for i in range(n)]


@pytest.mark.parametrize(("backbone", "dialect", "frame"), [
    ("qwen2.5-vl", None, None),  # native: qwen-json in abs-resized pixels, per-image bounds
    ("qwen2-vl", "qwen2vl", None),  # special-token groundings
    ("gemma3", "groundkit", "rel-1000"),
    ("gemma3", "molmo", None),
])
@pytest.mark.parametrize("sampling", [SamplingConfig(), SamplingConfig(do_sample=True, temperature=1.3, top_k=50, seed=0)],
                         ids=["greedy", "sampled"])
def test_tiny_model_outputs_are_all_valid(backbone, dialect, frame, sampling):
    loaded = gk.load_model(f"tiny:{backbone}")
    results = generate(loaded, requests(4), dialect=dialect, frame=frame, constrained=True, max_new_tokens=48,
                       sampling=sampling, batch_size=4)
    bad = [(r.text, r.error) for r in results if r.trace is None]
    assert not bad, bad[0]


def test_replayed_masks_equal_the_generation_masks():
    loaded = gk.load_model("tiny:gemma3")
    grammar = gk.get_grammar("groundkit")
    tok = loaded.tokenizer
    prompt = tok(["<think>", "<think>"], return_tensors="pt", add_special_tokens=False)
    sizes = [gk.ImageSize(640, 480), gk.ImageSize(100, 50)]
    processor = make_processor(tok, grammar, sizes, max_new_tokens=30)
    lm = loaded.model
    with torch.no_grad():
        gen = lm.generate(**prompt, max_new_tokens=30, do_sample=False, logits_processor=[processor], output_scores=True,
                          output_logits=True, return_dict_in_generate=True, eos_token_id=processor.eos_token_ids,
                          pad_token_id=tok.pad_token_id)
    masked = torch.stack(gen.scores, 1)
    raw = torch.stack(gen.logits, 1)
    ids = gen.sequences[:, prompt["input_ids"].shape[1]:]
    replayed = replay_mask(tok, grammar, raw, ids, sizes, max_new_tokens=30)
    assert torch.equal(torch.isneginf(replayed), torch.isneginf(masked))
    assert torch.equal(replayed[~torch.isneginf(replayed)], masked[~torch.isneginf(masked)])


def test_processor_rejects_a_batch_it_was_not_built_for():
    tok = gk.load_model("tiny:gemma3").tokenizer
    processor = make_processor(tok, gk.get_grammar("groundkit"), [gk.ImageSize(10, 10)] * 3)
    with pytest.raises(gk.GroundkitError, match="built for 3 rows"):
        processor(torch.zeros((2, 1), dtype=torch.long), torch.zeros((2, len(tok))))


def test_per_image_frame_refuses_huge_images_when_the_processor_is_built():
    tok = gk.load_model("tiny:gemma3").tokenizer
    with pytest.raises(gk.FrameError, match=r"image_sizes\[0\].*beyond the decoder's limit"):
        make_processor(tok, gk.get_grammar("groundkit", "abs-original"), [gk.ImageSize(200_000, 10)])
