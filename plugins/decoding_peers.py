"""Decoding backends ``llguidance`` and ``xgrammar``: thin adapters over engines groundkit does not own.

Each drives the peer's matcher on groundkit's grammar exports (``export_lark`` /
``export_ebnf``), one matcher per batch row, fills an int32 token bitmask (bit ``t % 32`` of
word ``t // 32`` allows token ``t``) and applies it to the logits. Numbers are bounded by the
frame; per-image frames get one grammar per distinct image (the larger of its two extents).
What the peers cannot enforce: box ordering (x1 < x2), per-axis bounds, budget-aware closing.
Both packages are optional (``pip install 'groundkit[bench]'``).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from typing import Any

from groundkit import (
    ComposedGrammar,
    DecodingBackend,
    GroundkitError,
    ImageSize,
    export_ebnf,
    export_lark,
    free_text_terminals,
    hookimpl,
)


def apply_bitmask(scores: Any, bitmask: Any) -> None:
    """Set ``scores[i, t] = -inf`` where bit ``t`` of row ``i`` of the int32 ``bitmask`` is 0 (in place)."""
    import numpy as np
    import torch

    batch, vocab = scores.shape
    # little-endian int32 words: bit i of word j is bit i % 8 of byte 4j + i // 8, i.e. token 32j + i
    bits = np.unpackbits(bitmask[:batch].numpy().view(np.uint8), axis=1, bitorder="little")[:, :vocab]
    allowed = torch.from_numpy(bits)
    if allowed.shape[1] < vocab:  # tokens past the mask's vocabulary are never allowed
        allowed = torch.nn.functional.pad(allowed, (0, vocab - allowed.shape[1]))
    scores.masked_fill_(allowed.to(scores.device, non_blocking=True) == 0, float("-inf"))


def _special_literals(tokenizer: Any) -> set[str]:
    added = getattr(tokenizer, "get_added_vocab", lambda: {})()
    return {t for t in added if t.startswith("<") and t.endswith(">")}


_LLG_KERNEL_BROKEN = False


class Peer:
    """One peer engine bound to a tokenizer and a vocabulary size (what the logits' last dim is)."""

    name = ""

    def __init__(self, tokenizer: Any, vocab_size: int):
        self.tokenizer, self.vocab_size = tokenizer, vocab_size

    def compile(self, grammar: ComposedGrammar, image_size: ImageSize | None = None) -> Any:
        raise NotImplementedError

    def matcher(self, compiled: Any) -> Any:
        raise NotImplementedError

    def fill(self, matchers: Sequence[Any], bitmask: Any) -> None:
        """Fill rows ``0..len(matchers)`` of ``bitmask`` with each matcher's allowed tokens."""
        raise NotImplementedError

    def advance(self, matcher: Any, token: int) -> bool:
        raise NotImplementedError

    def done(self, matcher: Any) -> bool:
        """Whether the matcher has ended (only EOS is allowed, or it has consumed EOS)."""
        raise NotImplementedError

    def allocate(self, batch: int) -> Any:
        import torch

        return torch.full((batch, (self.vocab_size + 31) // 32), -1, dtype=torch.int32)

    def apply(self, scores: Any, bitmask: Any) -> None:
        """Apply ``bitmask`` to ``scores`` in place with the peer's own kernel (falls back to
        :func:`apply_bitmask` where the peer's kernel cannot run here)."""
        apply_bitmask(scores, bitmask)


class LLGuidancePeer(Peer):
    """llguidance: ``LLMatcher`` on :func:`export_lark`; the free-text terminals are added to its slices."""

    name = "llguidance"

    def __init__(self, tokenizer: Any, vocab_size: int, grammar: ComposedGrammar | None = None):
        import llguidance
        import llguidance.hf

        super().__init__(tokenizer, vocab_size)
        slices = llguidance.LLTokenizer.general_slices()
        if grammar is not None:  # a slice per free-text class: the mask inside text is one precomputed set
            slices = slices + sorted(set(free_text_terminals(grammar).values()) - set(slices))
        self.lltok = llguidance.hf.from_tokenizer(tokenizer, n_vocab=vocab_size, slices=slices)
        self.executor = llguidance.LLExecutor()
        self.special = _special_literals(tokenizer)

    def compile(self, grammar: ComposedGrammar, image_size: ImageSize | None = None) -> Any:
        import llguidance

        text = export_lark(grammar, image_size, special_tokens=self.special & _literals(grammar))
        is_error, messages = llguidance.LLMatcher.validate_grammar_with_warnings(text, self.lltok)
        if is_error:
            raise GroundkitError(f"llguidance rejects the exported grammar: {messages[0]}")
        return text

    def matcher(self, compiled: Any) -> Any:
        import llguidance

        return llguidance.LLMatcher(self.lltok, compiled, log_level=0)

    def fill(self, matchers: Sequence[Any], bitmask: Any) -> None:
        import llguidance.torch

        llguidance.torch.fill_next_token_bitmask_par(self.executor, [(m, i) for i, m in enumerate(matchers)], bitmask)

    def advance(self, matcher: Any, token: int) -> bool:
        return bool(matcher.consume_token(token))

    def apply(self, scores: Any, bitmask: Any) -> None:
        """llguidance's torch-compiled kernel; the numpy one where torch.compile cannot build here."""
        global _LLG_KERNEL_BROKEN
        if not _LLG_KERNEL_BROKEN:
            import llguidance.torch

            try:
                llguidance.torch.apply_token_bitmask_inplace(scores, bitmask[: scores.shape[0]])
                return
            except Exception as exc:  # noqa: BLE001 - no C++ toolchain for inductor, or an old torch
                _LLG_KERNEL_BROKEN = True
                import warnings

                warnings.warn(f"llguidance's compiled bitmask kernel cannot run here ({exc!r}); applying masks with "
                              "groundkit's slower numpy unpacking, so llguidance's apply times are pessimistic", stacklevel=2)
        apply_bitmask(scores, bitmask)

    def done(self, matcher: Any) -> bool:
        return bool(matcher.is_stopped())


class XGrammarPeer(Peer):
    """xgrammar: ``GrammarMatcher`` on :func:`export_ebnf`, masks filled by ``BatchGrammarMatcher``."""

    name = "xgrammar"

    def __init__(self, tokenizer: Any, vocab_size: int, grammar: ComposedGrammar | None = None, threads: int = 2):
        import xgrammar

        super().__init__(tokenizer, vocab_size)
        self.info = xgrammar.TokenizerInfo.from_huggingface(tokenizer, vocab_size=vocab_size)
        self.compiler = xgrammar.GrammarCompiler(self.info, max_threads=threads, cache_enabled=False)
        self.batch = xgrammar.BatchGrammarMatcher(max_threads=threads)

    def compile(self, grammar: ComposedGrammar, image_size: ImageSize | None = None) -> Any:
        try:
            return self.compiler.compile_grammar(export_ebnf(grammar, image_size))
        except RuntimeError as exc:
            raise GroundkitError(f"xgrammar rejects the exported grammar: {exc}") from exc

    def matcher(self, compiled: Any) -> Any:
        import xgrammar

        return xgrammar.GrammarMatcher(compiled)

    def fill(self, matchers: Sequence[Any], bitmask: Any) -> None:
        self.batch.batch_fill_next_token_bitmask(list(matchers), bitmask)

    def advance(self, matcher: Any, token: int) -> bool:
        return bool(matcher.accept_token(token))

    def apply(self, scores: Any, bitmask: Any) -> None:
        """xgrammar's own kernel (a C++ loop on the CPU)."""
        import xgrammar

        xgrammar.apply_token_bitmask_inplace(scores, bitmask[: scores.shape[0]])

    def done(self, matcher: Any) -> bool:
        return bool(matcher.is_terminated())


def _literals(grammar: ComposedGrammar) -> set[str]:
    import re

    return {m for m in re.findall(r'"((?:[^"\\]|\\.)*)"', grammar.text)}


class PeerProcessor:
    """A ``transformers`` logits processor over a :class:`Peer`: one matcher per row, built on the first step."""

    def __init__(self, make_peer: Any, grammar: ComposedGrammar, image_sizes: Sequence[ImageSize | None] | None):
        self.make_peer, self.grammar, self.image_sizes = make_peer, grammar, image_sizes
        self.peer: Peer | None = None
        self.matchers: list[Any] = []
        self.finished: list[bool] = []
        self.bitmask: Any = None

    def _start(self, batch: int, vocab: int) -> None:
        self.peer = self.make_peer(vocab)
        sizes = list(self.image_sizes) if self.image_sizes is not None else [None] * batch
        if len(sizes) != batch:
            raise GroundkitError(f"{len(sizes)} image sizes for a batch of {batch} rows")
        if not self.grammar.frame.per_image:
            sizes = [None] * batch
        compiled: dict[Any, Any] = {}
        for s in sizes:
            if s not in compiled:
                compiled[s] = self.peer.compile(self.grammar, s)
        self.matchers = [self.peer.matcher(compiled[s]) for s in sizes]
        self.finished = [False] * batch
        self.bitmask = self.peer.allocate(batch)

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        if self.peer is None:
            self._start(scores.shape[0], scores.shape[-1])
        else:
            for i, token in enumerate(input_ids[:, -1].tolist()):
                if not self.finished[i]:
                    ok = self.peer.advance(self.matchers[i], int(token))
                    self.finished[i] = not ok or self.peer.done(self.matchers[i])
        assert self.peer is not None
        self.bitmask.fill_(-1)
        live = [i for i, f in enumerate(self.finished) if not f]
        if live:
            if len(live) == len(self.matchers):
                self.peer.fill(self.matchers, self.bitmask)
            else:
                part = self.peer.allocate(len(live))
                self.peer.fill([self.matchers[i] for i in live], part)
                self.bitmask[live] = part
        self.peer.apply(scores, self.bitmask)
        return scores


_PEERS: dict[tuple[Any, ...], tuple[Any, Peer]] = {}


def cached_peer(peer_class: type[Peer], tokenizer: Any, vocab_size: int, grammar: ComposedGrammar) -> Peer:
    """A peer per (engine, tokenizer, vocabulary, grammar): building one reads the whole vocabulary (~1 s)."""
    key = (peer_class, id(tokenizer), vocab_size, grammar.text)
    hit = _PEERS.get(key)
    if hit is None or hit[0] is not tokenizer:
        if len(_PEERS) >= 8:
            _PEERS.pop(next(iter(_PEERS)))
        hit = _PEERS[key] = (tokenizer, peer_class(tokenizer, vocab_size, grammar))
    return hit[1]


def _processor_class() -> type:
    from transformers import LogitsProcessor

    return type("PeerLogitsProcessor", (PeerProcessor, LogitsProcessor), {})


class _PeerBackend(DecodingBackend):
    package = ""
    peer_class: type[Peer] = Peer

    def unavailable(self) -> str | None:
        if importlib.util.find_spec(self.package) is None:
            return f"the optional package {self.package!r} is not installed (pip install 'groundkit[bench]')"
        return None

    def logits_processor(
        self,
        tokenizer: Any,
        grammar: ComposedGrammar,
        image_sizes: Sequence[ImageSize | None] | None = None,
        max_new_tokens: int | None = None,
    ) -> Any:
        reason = self.unavailable()
        if reason:
            raise GroundkitError(f"decoding backend {self.name!r}: {reason}")
        return _processor_class()(lambda vocab: cached_peer(self.peer_class, tokenizer, vocab, grammar), grammar, image_sizes)


class LLGuidanceBackend(_PeerBackend):
    name = "llguidance"
    description = "llguidance (Earley + lexer) on the grammar's Lark export; bounds but not x1<x2 or budget closing"
    package = "llguidance"
    peer_class = LLGuidancePeer


class XGrammarBackend(_PeerBackend):
    name = "xgrammar"
    description = "xgrammar (pushdown automaton) on the grammar's EBNF export; bounds but not x1<x2 or budget closing"
    package = "xgrammar"
    peer_class = XGrammarPeer


@hookimpl
def register_decoding_backends(register):
    register(LLGuidanceBackend())
    register(XGrammarBackend())
