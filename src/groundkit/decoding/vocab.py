"""Exact byte strings of a tokenizer's tokens.

Supported: byte-level BPE (GPT-2 / Qwen2 byte-to-unicode alphabet), SentencePiece-style
vocabularies (``▁`` for spaces, ``<0xNN>`` byte fallback), and added tokens. An added
token (``<|box_start|>``) may appear only where the grammar writes its exact text;
other added tokens (chat markers, image placeholders) are never allowed, except the
end-of-sequence tokens, which the automaton allows in accepting states only.
"""

from __future__ import annotations

import hashlib
import json
import re
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from groundkit.errors import GrammarError

TOKENIZER_FILES = ("tokenizer.json", "vocab.json", "merges.txt", "tokenizer.model", "added_tokens.json", "special_tokens_map.json",
                   "tokenizer_config.json")
BYTE_FALLBACK = re.compile(r"^<0x([0-9A-Fa-f]{2})>$")
END_MARKERS = ("<|im_end|>", "<|endoftext|>", "<end_of_turn>", "<eos>", "</s>", "<|eot_id|>", "<|end_of_text|>")
_FINGERPRINTS: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()


def _byte_level_decoder() -> dict[str, int]:
    """Inverse of the GPT-2 byte-to-unicode map used by byte-level BPE vocabularies."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    chars, extra = [], 0
    for b in range(256):
        if b in printable:
            chars.append(chr(b))
        else:
            chars.append(chr(256 + extra))
            extra += 1
    return {c: b for b, c in enumerate(chars)}


@dataclass
class Vocabulary:
    """Per token id, its bytes (None: never allowed); the end-of-sequence ids; a fingerprint."""

    tokens: list[bytes | None]
    eos_ids: list[int]
    fingerprint: str
    kind: str

    @property
    def size(self) -> int:
        return len(self.tokens)


def _decoder_kind(tokenizer: Any) -> str:
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise GrammarError(f"{type(tokenizer).__name__} has no fast (tokenizers) backend; the decoder needs one to read token bytes")
    state = json.loads(backend.decoder.__getstate__()) if backend.decoder is not None else {}
    text = json.dumps(state)
    if '"ByteLevel"' in text:
        return "byte-level"
    if '"ByteFallback"' in text or "\\u2581" in text or "▁" in text:
        return "sentencepiece"
    raise GrammarError(f"unsupported tokenizer decoder {text[:120]}: groundkit reads byte-level BPE and SentencePiece vocabularies")


def tokenizer_fingerprint(tokenizer: Any) -> str:
    """A hash of the whole tokenizer definition (vocabulary, merges, added tokens)."""
    try:
        return _FINGERPRINTS[tokenizer]
    except (KeyError, TypeError):
        pass
    digest = hashlib.sha256(type(tokenizer).__name__.encode())
    folder = Path(str(getattr(tokenizer, "name_or_path", "") or ""))
    files = [folder / name for name in TOKENIZER_FILES] if folder.is_dir() else []
    files = [f for f in files if f.is_file()]
    if files:  # a checkpoint folder: its files define the tokenizer (hashing them is ~10x faster)
        for f in files:
            digest.update(f.name.encode() + b"\0" + f.read_bytes())
        digest.update(str(len(tokenizer)).encode())
    else:
        digest.update(tokenizer.backend_tokenizer.to_str().encode("utf-8"))
    digest.update(repr(sorted((k, str(v)) for k, v in tokenizer.added_tokens_decoder.items())).encode())
    result = digest.hexdigest()[:32]
    try:
        _FINGERPRINTS[tokenizer] = result
    except TypeError:
        pass
    return result


def eos_token_ids(tokenizer: Any) -> list[int]:
    """End-of-sequence ids: the tokenizer's EOS plus known end-of-turn markers in its vocabulary."""
    vocab_ids = {content.content: i for i, content in tokenizer.added_tokens_decoder.items()}
    ids = {i for m, i in vocab_ids.items() if m in END_MARKERS}
    if tokenizer.eos_token_id is not None:
        ids.add(int(tokenizer.eos_token_id))
    if not ids:
        raise GrammarError("the tokenizer has no end-of-sequence token; pass eos_token_ids explicitly")
    return sorted(ids)


def read_vocabulary(tokenizer: Any, grammar_literals: set[str], eos_ids: list[int] | None = None) -> Vocabulary:
    """Token bytes for every id below ``len(tokenizer)``.

    ``grammar_literals`` are the literal strings of the grammar: an added token is allowed
    (as its text) only if its text is one of them or occurs inside one.
    """
    kind = _decoder_kind(tokenizer)
    n = len(tokenizer)
    pieces = tokenizer.convert_ids_to_tokens(list(range(n)))
    added = {i: tok.content for i, tok in tokenizer.added_tokens_decoder.items()}
    eos = sorted(set(eos_ids if eos_ids is not None else eos_token_ids(tokenizer)))
    tokens: list[bytes | None] = [None] * n
    if kind == "byte-level":
        table = _byte_level_decoder()
        translate = str.maketrans({c: chr(b) for c, b in table.items()})
        for i, piece in enumerate(pieces):
            if piece is None or i in added:
                continue
            try:
                tokens[i] = piece.translate(translate).encode("latin-1")
            except UnicodeEncodeError:
                tokens[i] = None  # a piece outside the byte alphabet cannot be produced
    else:
        for i, piece in enumerate(pieces):
            if piece is None:
                continue
            fallback = BYTE_FALLBACK.match(piece)
            if fallback:
                tokens[i] = bytes([int(fallback.group(1), 16)])
            elif i not in added:
                tokens[i] = piece.replace("▁", " ").encode("utf-8")
    for i, content in added.items():
        if i < n and tokens[i] is None and i not in eos and any(content in lit for lit in grammar_literals):
            tokens[i] = content.encode("utf-8")
    for i in eos:
        if i < n:
            tokens[i] = None
    for i, t in enumerate(tokens):
        if t == b"":
            tokens[i] = None
    return Vocabulary(tokens, eos, tokenizer_fingerprint(tokenizer), kind)
