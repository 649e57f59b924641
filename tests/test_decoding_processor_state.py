"""The processor knows where it is (a new generation resets it, a rollback or jump is
replayed, a lost row is reported, beam search is refused), its arguments are checked when
it is built, and ``generate_kwargs`` / ``decode`` are the one way around ``generate()``."""

from __future__ import annotations

import pytest
import torch

import groundkit as gk
from groundkit.decoding import DecodingWarning, make_processor
from groundkit.errors import FrameError, GroundkitError

TEXT = "<think>The cup <point label=\"cup\">(120, 80)</point> is here.</think><answer>1</answer>"


@pytest.fixture(scope="module")
def tiny():
    return gk.load_model("tiny:gemma3")


def masks_along(proc, ids: torch.Tensor, prompt: int, vocab: int) -> list[torch.Tensor]:
    """The processor's mask after each prefix of ``ids`` (one call per token, as generate() does)."""
    out = []
    for end in range(prompt, ids.shape[1] + 1):
        out.append(torch.isneginf(proc(ids[:, :end], torch.zeros(ids.shape[0], vocab))))
    return out


def written(tok, rows: int = 2) -> torch.Tensor:
    """A prompt of 3 tokens and a valid completion, for ``rows`` identical rows."""
    ids = [5, 6, 7] + tok.encode(TEXT, add_special_tokens=False)
    return torch.tensor([ids] * rows)


def test_rollback_and_jump_resynchronise_to_the_masks_of_a_fresh_processor(tiny):
    tok, grammar = tiny.tokenizer, gk.get_grammar("groundkit")
    ids = written(tok)
    vocab = len(tok)
    sizes = [gk.ImageSize(640, 480)] * 2
    fresh = masks_along(make_processor(tok, grammar, sizes, max_new_tokens=60), ids, 3, vocab)
    proc = make_processor(tok, grammar, sizes, max_new_tokens=60)
    masks_along(proc, ids[:, :20], 3, vocab)  # ran ahead to 20 positions
    n = ids.shape[1]
    assert n > 24
    for end in (12, n - 3, 9, n - 1, n):  # rollback, jump, rollback, jump, then a plain step
        got = torch.isneginf(proc(ids[:, :end], torch.zeros(2, vocab)))
        assert torch.equal(got, fresh[end - 3]), end
    assert proc.resyncs == 4


def test_a_rejected_speculative_token_is_replaced_not_kept(tiny):
    tok, grammar = tiny.tokenizer, gk.get_grammar("groundkit")
    ids = written(tok, rows=1)
    speculated = ids.clone()
    speculated[0, 10:14] = torch.tensor(tok.encode("<think", add_special_tokens=False)[:1] * 4)  # candidates
    vocab = len(tok)
    proc = make_processor(tok, grammar, [gk.ImageSize(64, 64)], max_new_tokens=60)
    masks_along(proc, speculated[:, :14], 3, vocab)  # the candidates were scored
    got = torch.isneginf(proc(ids[:, :11], torch.zeros(1, vocab)))  # rejected from 10 on: the model's own token at 10
    want = masks_along(make_processor(tok, grammar, [gk.ImageSize(64, 64)], max_new_tokens=60), ids[:, :11], 3, vocab)[-1]
    assert torch.equal(got, want) and proc.resyncs == 1


def test_a_new_prompt_starts_a_new_generation(tiny):
    tok, grammar = tiny.tokenizer, gk.get_grammar("groundkit")
    ids = written(tok)
    vocab = len(tok)
    proc = make_processor(tok, grammar, None, max_new_tokens=60)
    masks_along(proc, ids, 3, vocab)
    first = make_processor(tok, grammar, None, max_new_tokens=60)(ids[:, :3], torch.zeros(2, vocab))
    eos = proc.eos_token_ids[0]
    next_turn = torch.cat([ids, torch.full((2, 1), eos), ids[:, :3]], 1)  # old prompt + answer + EOS + a new turn
    for prompt in (ids[:, :2], torch.cat([ids[:, :1] + 1, ids[:, 1:40]], 1), next_turn):
        got = proc(prompt, torch.zeros(2, vocab))
        assert proc.prompt_length == prompt.shape[1] and proc.advanced == 0
        assert torch.equal(torch.isneginf(got), torch.isneginf(first))
    proc(ids[:, :9], torch.zeros(2, vocab))  # generate_kwargs() marks the next call as a new start, whatever it is
    proc.generate_kwargs()
    proc(ids[:, :10], torch.zeros(2, vocab))
    assert proc.prompt_length == 10 and proc.advanced == 0


def test_on_the_device_path_a_row_that_lost_track_is_ended_and_reported(tiny):
    tok, grammar = tiny.tokenizer, gk.get_grammar("groundkit")
    ids = written(tok)
    vocab = len(tok)
    proc = make_processor(tok, grammar, None, max_new_tokens=60)
    proc(ids[:, :3], torch.zeros(2, vocab))
    proc.constraint.use_host = False  # the GPU step, on the CPU
    for end in range(4, 12):
        proc(ids[:, :end], torch.zeros(2, vocab))
    swapped = ids[:, :12].clone()
    swapped[1, 10] = swapped[1, 10] + 1  # row 1's previous token rewritten behind the processor's back
    scores = proc(swapped, torch.zeros(2, vocab))
    allowed = torch.nonzero(~torch.isneginf(scores[1])).flatten().tolist()
    assert sorted(allowed) == sorted(proc.eos_token_ids)  # the lost row may only end
    assert not torch.isneginf(scores[0]).all()
    with pytest.raises(GroundkitError, match=r"rows \[1\]: input_ids did not extend"):
        proc.decode(swapped)


def test_beam_search_is_refused_at_the_first_call(tiny):
    tok = tiny.tokenizer
    proc = make_processor(tok, gk.get_grammar("groundkit"), None, max_new_tokens=8)
    prompt = tok(["<think>"], return_tensors="pt", add_special_tokens=False)
    with pytest.raises(GroundkitError, match="beam search"), torch.no_grad():
        tiny.model.generate(**prompt, num_beams=2, do_sample=False, **proc.generate_kwargs())


def test_reusing_a_processor_and_assisted_or_draft_decoding_give_the_greedy_text(tiny):
    tok, grammar = tiny.tokenizer, gk.get_grammar("groundkit")
    prompt = tok(["<think>"], return_tensors="pt", add_special_tokens=False)
    proc = make_processor(tok, grammar, None, max_new_tokens=40)
    with torch.no_grad():
        plain = proc.decode(tiny.model.generate(**prompt, do_sample=False, **proc.generate_kwargs()))
        again = proc.decode(tiny.model.generate(**prompt, do_sample=False, **proc.generate_kwargs()))
        assisted_proc = make_processor(tok, grammar, None, max_new_tokens=40)
        out = tiny.model.generate(**prompt, do_sample=False, prompt_lookup_num_tokens=4, **assisted_proc.generate_kwargs())
        drafted_proc = make_processor(tok, grammar, None, max_new_tokens=40)  # a draft model shares the processor
        drafted = drafted_proc.decode(tiny.model.generate(**prompt, do_sample=False, assistant_model=tiny.model,
                                                          **drafted_proc.generate_kwargs()))
    assisted = assisted_proc.decode(out)
    assert assisted_proc.resyncs > 0 and drafted_proc.resyncs > 0  # candidates were rejected and replayed
    assert again == plain and plain[0]
    gk.parse(assisted[0], dialect="groundkit")  # valid, and the processor kept track
    assert assisted == plain and drafted == plain


def test_generate_kwargs_and_decode_are_the_whole_recipe():
    loaded = gk.load_model("tiny:qwen2-vl")
    tok = loaded.tokenizer
    grammar = gk.get_grammar("qwen2vl")
    prompt = tok(["<think>", "<think>The"], return_tensors="pt", padding=True, add_special_tokens=False)
    proc = make_processor(tok, grammar, None, max_new_tokens=48, num_return_sequences=2)
    kwargs = proc.generate_kwargs()
    assert kwargs["max_new_tokens"] == 48 and kwargs["num_return_sequences"] == 2
    assert kwargs["eos_token_id"] == proc.eos_token_ids and kwargs["pad_token_id"] == tok.pad_token_id
    torch.manual_seed(0)
    with torch.no_grad():
        out = loaded.model.generate(**prompt, do_sample=True, temperature=1.5, **kwargs)
    texts = proc.decode(out)
    assert len(texts) == 4
    for text in texts:
        assert "<|im_end|>" not in text and "<|endoftext|>" not in text
        gk.parse(text, dialect="qwen2vl")


def test_a_smaller_budget_given_to_generate_warns_that_traces_were_not_closed(tiny):
    tok = tiny.tokenizer
    prompt = tok(["<think>"], return_tensors="pt", add_special_tokens=False)
    proc = make_processor(tok, gk.get_grammar("groundkit"), None, max_new_tokens=64)
    kwargs = {**proc.generate_kwargs(), "max_new_tokens": 6}
    with torch.no_grad():
        out = tiny.model.generate(**prompt, do_sample=False, **kwargs)
    with pytest.warns(DecodingWarning, match="budget of 64"):
        proc.decode(out)


# --- errors when the processor is built -------------------------------------------------------
@pytest.mark.parametrize(("frame", "sizes", "match"), [
    ("abs-original", None, r"pass image_sizes="),
    ("abs-resized", [gk.ImageSize(640, 480), None], r"image_sizes\[1\] is None"),
    ("abs-original", [(640, 480)], r"image_sizes\[0\] must be an ImageSize"),
    ("abs-original", gk.ImageSize(640, 480), r"must be a list"),
    ("abs-original", [gk.ImageSize(640, 480), gk.ImageSize(100_000, 5)], r"image_sizes\[1\].*beyond the decoder's limit"),
    ("abs-resized", [gk.ImageSize(30_000, 10)], r"image_sizes\[0\].*aspect ratio"),
])
def test_bad_sizes_fail_when_the_processor_is_built(tiny, frame, sizes, match):
    with pytest.raises(FrameError, match=match):
        make_processor(tiny.tokenizer, gk.get_grammar("groundkit", frame), sizes, max_new_tokens=8)


def test_fractional_sizes_never_reach_the_processor():
    with pytest.raises(FrameError, match="positive integer"):
        gk.ImageSize(1.5, 2.7)


def test_bad_budget_or_repetition_fails_when_the_processor_is_built(tiny):
    grammar = gk.get_grammar("groundkit")
    for kwargs in (dict(max_new_tokens=0), dict(max_new_tokens=2.5), dict(num_return_sequences=0)):
        with pytest.raises(GroundkitError, match="must be a positive integer"):
            make_processor(tiny.tokenizer, grammar, None, **kwargs)


def test_rows_must_match_sizes_unless_the_repetition_is_declared(tiny):
    tok, grammar = tiny.tokenizer, gk.get_grammar("groundkit", "abs-original")
    sizes = [gk.ImageSize(640, 480), gk.ImageSize(50, 30)]
    with pytest.raises(GroundkitError, match="built for 2 rows, generate.. passed 4; declare repeated rows"):
        make_processor(tok, grammar, sizes)(torch.zeros((4, 1), dtype=torch.long), torch.zeros(4, len(tok)))
    proc = make_processor(tok, grammar, sizes, num_return_sequences=2)
    proc(torch.zeros((4, 1), dtype=torch.long), torch.zeros(4, len(tok)))
    assert proc.constraint.hi.tolist() == [[640, 480], [640, 480], [50, 30], [50, 30]]  # [A, A, B, B], as generate() lays rows
    with pytest.raises(GroundkitError, match="x num_return_sequences=2 = 4, generate.. passed 6"):
        proc(torch.zeros((6, 1), dtype=torch.long), torch.zeros(6, len(tok)))
