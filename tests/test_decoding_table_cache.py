"""A truncated or foreign decoding-table cache file is rebuilt with a warning, never a crash."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest

from groundkit.backbones.tokenizers import sentencepiece_tokenizer
from groundkit.decoding.tables import DecodingWarning, cache_dir, get_tables, grammar_literals, load_tables
from groundkit.decoding.vocab import read_vocabulary
from groundkit.text.grammar import get_grammar


def foreign_npz() -> bytes:
    buf = io.BytesIO()
    np.savez(buf, weights=np.arange(4))
    return buf.getvalue()


def without_arrays() -> bytes:
    buf = io.BytesIO()
    np.savez(buf, __meta=np.arange(6), dist=np.arange(3))
    return buf.getvalue()


def zip_without_arrays() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("readme.txt", "hello")
    return buf.getvalue()


@pytest.mark.parametrize("spoil", [
    lambda good: good[: len(good) // 2],  # truncated: BadZipFile
    lambda good: good[:10],  # a few bytes of the header
    lambda good: b"",  # empty
    lambda good: foreign_npz(),  # another program's npz: KeyError on __meta
    lambda good: without_arrays(),  # meta but not the arrays
    lambda good: zip_without_arrays(),  # a zip that is no npz
    lambda good: b"\x93NUMPY garbage",  # looks like .npy
], ids=["truncated", "header-only", "empty", "foreign-npz", "missing-arrays", "plain-zip", "npy-garbage"])
def test_a_spoiled_cache_file_is_rebuilt_with_a_warning(tmp_path, monkeypatch, spoil):
    monkeypatch.setenv("GROUNDKIT_CACHE_DIR", str(tmp_path))
    grammar = get_grammar("treevgr")
    vocab = read_vocabulary(sentencepiece_tokenizer(), grammar_literals(grammar))
    cold = get_tables(grammar, vocab)
    [path] = list(cache_dir().glob("*.npz"))
    path.write_bytes(spoil(path.read_bytes()))
    with pytest.warns(DecodingWarning, match="unreadable.*rebuilding"):
        rebuilt = get_tables(grammar, vocab)
    assert (rebuilt.arrays["dist"] == cold.arrays["dist"]).all()
    assert load_tables(path) is not None  # rewritten whole


def test_an_absent_cache_file_is_no_warning(tmp_path):
    assert load_tables(tmp_path / "absent.npz") is None
