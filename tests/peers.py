"""Text-level acceptors for the differential tests: the Lark parser, the exported regex, llguidance, xgrammar.

The peers are optional (``groundkit[bench]``); :func:`need` skips a test with the reason.
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache

import pytest
import regex

import groundkit as gk


def need(package: str) -> None:
    if importlib.util.find_spec(package) is None:
        pytest.skip(f"optional peer {package!r} is not installed (pip install 'groundkit[bench]')")


def lark_accepts(grammar: gk.ComposedGrammar, text: str, size: gk.ImageSize | None = None) -> tuple[bool, str]:
    """Verdict of groundkit's parser (grammar + frame bounds + value checks) and its reason."""
    try:
        gk.TraceParser(grammar, native=False).parse(text, image_size=size)  # the canonical language the decoder writes
    except gk.ParseError as err:
        return False, err.reason
    return True, ""


@lru_cache(maxsize=64)
def _regex(pattern: str) -> regex.Pattern:
    return regex.compile(pattern, regex.DOTALL)


def regex_accepts(pattern: str, text: str) -> bool:
    return _regex(pattern).fullmatch(text) is not None


class _ByteTokens:
    """A 257-token vocabulary: one token per byte, then EOS (llguidance's TokenizerWrapper protocol)."""

    eos_token_id = 256
    bos_token_id = None
    special_token_ids = [256]
    tokens = [bytes([b]) for b in range(256)] + [b"<eos>"]

    def __call__(self, data: bytes) -> list[int]:
        return list(data)


@lru_cache(maxsize=1)
def _byte_lltokenizer():
    import llguidance

    return llguidance.LLTokenizer(llguidance.TokenizerWrapper(_ByteTokens()), slices=[])


def llguidance_accepts(lark_text: str, text: str) -> bool:
    import llguidance

    m = llguidance.LLMatcher(_byte_lltokenizer(), lark_text, log_level=0)
    assert not m.is_error(), m.get_error()
    return m.consume_tokens(list(text.encode())) and m.is_accepting()


@lru_cache(maxsize=64)
def _xgrammar_compiled(ebnf: str):
    import xgrammar

    return xgrammar.GrammarCompiler(xgrammar.TokenizerInfo([]), cache_enabled=False).compile_grammar(ebnf)


def xgrammar_accepts(ebnf: str, text: str) -> bool:
    import xgrammar

    m = xgrammar.GrammarMatcher(_xgrammar_compiled(ebnf), terminate_without_stop_token=True)
    return m.accept_string(text) and m.is_terminated()
