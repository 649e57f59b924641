"""Tokenizers for tiny offline models: the real Qwen2 BPE when ../shared has it, else small trained ones."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

#: Environment variable pointing at a Qwen2 tokenizer folder (vocab.json, merges.txt, added_tokens.json).
QWEN2_TOKENIZER_ENV = "GROUNDKIT_QWEN2_TOKENIZER"
QWEN_SPECIALS = [
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>", "<|box_start|>",
    "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>", "<|vision_end|>", "<|vision_pad|>",
    "<|image_pad|>", "<|video_pad|>",
]
GEMMA_SPECIALS = [
    "<pad>", "<eos>", "<bos>", "<unk>", "<start_of_turn>", "<end_of_turn>", "<start_of_image>", "<end_of_image>",
    "<image_soft_token>",
]


def corpus() -> list[str]:
    """A small corpus covering the dialects' syntax, digits and chat text, for training tiny vocabularies."""
    from groundkit.registry import get_registry

    reg = get_registry()
    lines = [reg.dialect(n).example for n in reg.dialects.names()]
    lines += ["How many red circles are there? Is the blue square left of the green triangle? yes no A B C D"]
    lines += [" ".join(str(i) for i in range(0, 1001, 7)), "0123456789 .,:;!?()[]{}<>\"'/-_=+ label point box mask"]
    return lines * 8


def find_qwen2_tokenizer_dir() -> Path | None:
    """$GROUNDKIT_QWEN2_TOKENIZER, else ../shared/tokenizers/qwen2 next to the source checkout."""
    env = os.environ.get(QWEN2_TOKENIZER_ENV)
    candidates = [Path(env)] if env else []
    candidates.append(Path(__file__).resolve().parents[4] / "shared" / "tokenizers" / "qwen2")
    return next((c for c in candidates if (c / "vocab.json").exists() and (c / "merges.txt").exists()), None)


def qwen_tokenizer(tokenizer_dir: str | Path | None = None) -> Any:
    """The real Qwen2 byte-level BPE (151,665 tokens) when available, else a small byte-level BPE."""
    from transformers import AddedToken, PreTrainedTokenizerFast, Qwen2Tokenizer

    path = Path(tokenizer_dir) if tokenizer_dir else find_qwen2_tokenizer_dir()
    if path is not None:
        tok = Qwen2Tokenizer.from_pretrained(path, local_files_only=True)
    else:
        from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

        bpe = Tokenizer(models.BPE())
        bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        bpe.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=1200, special_tokens=QWEN_SPECIALS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
        bpe.train_from_iterator(corpus(), trainer)
        tok = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|endoftext|>", pad_token="<|endoftext|>")
    missing = [t for t in QWEN_SPECIALS if t not in tok.get_vocab()]
    if missing:
        tok.add_special_tokens({"additional_special_tokens": [AddedToken(t, special=True, normalized=False) for t in missing]})
    tok.padding_side = "left"
    return tok


def train_tokenizer(texts: list[str], backbone: str = "qwen", vocab_size: int = 512) -> Any:
    """A small byte-level BPE trained on ``texts`` (an experiment's own prompts and traces), with the
    backbone family's special tokens (``qwen`` or ``gemma``) and digits kept one per token, so
    every coordinate is written digit by digit. Saved with ``save_pretrained`` it loads like any
    checkpoint's tokenizer; the decoder compiles its tables for it like for any other."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import AddedToken, PreTrainedTokenizerFast

    if backbone not in ("qwen", "gemma"):
        raise ValueError(f"train_tokenizer: backbone must be 'qwen' or 'gemma', got {backbone!r}")
    specials = QWEN_SPECIALS if backbone == "qwen" else GEMMA_SPECIALS
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                                 pre_tokenizers.ByteLevel(add_prefix_space=False)])
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    bpe.train_from_iterator([*texts, *corpus()], trainer)
    if backbone == "qwen":
        tok = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|endoftext|>", pad_token="<|endoftext|>")
        tok.add_special_tokens({"additional_special_tokens": [AddedToken(t, special=True, normalized=False) for t in specials]})
    else:
        tok = PreTrainedTokenizerFast(
            tokenizer_object=bpe, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>", unk_token="<unk>",
            extra_special_tokens={"boi_token": "<start_of_image>", "eoi_token": "<end_of_image>", "image_token": "<image_soft_token>"},
        )
    tok.padding_side = "left"
    return tok


def sentencepiece_tokenizer(vocab_size: int = 700) -> Any:
    """A Gemma-style tokenizer: BPE over '▁'-joined text with byte fallback (<0xNN>), trained offline."""
    from tokenizers import Tokenizer, decoders, models, normalizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True))
    bpe.normalizer = normalizers.Replace(" ", "▁")
    bpe.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse()])
    specials = GEMMA_SPECIALS + [f"<0x{i:02X}>" for i in range(256)]
    bpe.train_from_iterator(corpus(), trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials))
    tok = PreTrainedTokenizerFast(
        tokenizer_object=bpe, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>", unk_token="<unk>",
        extra_special_tokens={"boi_token": "<start_of_image>", "eoi_token": "<end_of_image>", "image_token": "<image_soft_token>"},
    )
    tok.padding_side = "left"
    return tok
