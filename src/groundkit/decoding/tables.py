"""Compile (grammar, tokenizer) into the token tables the runtime reads, and cache them on disk.

Per state the tables hold, padded to a common width so a batch step is pure gathers:

* ``ex_*``: the *explicit* tokens (sorted): every allowed token in a narrow state, and
  in a wide (free-text) state the allowed tokens that do not go to its default next state,
  with their next state and the distance (tokens to the end) from there;
* ``deny_*``: in a wide state, the tokens it forbids;
* ``num_*``: tokens that touch a number, with their :class:`NumberStep` fields.

A state is *wide* when it allows more than half the vocabulary; then masking costs what
it forbids, otherwise what it allows. ``dist`` (tokens needed to finish, counting a number
as ``number_chars`` tokens) drives budget-aware closing.
"""

from __future__ import annotations

import hashlib
import os
import time
import warnings
import zipfile
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from groundkit.decoding.automaton import ByteDFA, build_byte_dfa
from groundkit.decoding.numbers import NumberStep, describe
from groundkit.decoding.simulate import token_transitions
from groundkit.decoding.vocab import Vocabulary
from groundkit.errors import GrammarError
from groundkit.text.grammar import ComposedGrammar

ENGINE_VERSION = "1"
_COMPILER_MODULES = ("automaton.py", "nfa.py", "numbers.py", "simulate.py", "tables.py", "vocab.py")


def _compiler_hash() -> str:
    """Hash of the compiler's own source: tables cached by another version are never reused."""
    here = Path(__file__).parent
    h = hashlib.sha256(ENGINE_VERSION.encode())
    for name in _COMPILER_MODULES:
        h.update((here / name).read_bytes())
    return h.hexdigest()[:16]


COMPILER_HASH = _compiler_hash()
INF = 1 << 40
NUMBER_FIELDS = [f.name for f in fields(NumberStep)]
CACHE_ENV = "GROUNDKIT_CACHE_DIR"
#: Largest per-image bound the per-image frames accept (pixels per side).
MAX_PIXEL_BOUND = 99_999


@dataclass
class TokenTables:
    """Everything a step needs, as numpy arrays (moved to the logits' device by the runtime)."""

    vocab_size: int
    start: int
    finished: int
    dead: int
    max_decimals: int
    number_chars: int
    arrays: dict[str, np.ndarray]
    stats: dict[str, Any] = field(default_factory=dict)

    def __getattr__(self, name: str) -> np.ndarray:
        arrays = self.__dict__.get("arrays", {})
        if name in arrays:
            return arrays[name]
        raise AttributeError(name)

    @property
    def n_states(self) -> int:
        return int(self.arrays["dist"].shape[0])


def number_chars(grammar: ComposedGrammar) -> int:
    """Most characters one written number can take in this frame (bounds the budget)."""
    frame = grammar.frame
    bound = MAX_PIXEL_BOUND if frame.per_image else int(frame.scale)
    return len(str(bound)) + (1 + frame.max_decimals if frame.max_decimals else 0)


def grammar_literals(grammar: ComposedGrammar) -> set[str]:
    """The literal strings of the grammar (``"<think>"``, ``"<|box_start|>"``, ...)."""
    return {t.pattern.value for t in grammar.lark.terminals if type(t.pattern).__name__ == "PatternStr"}


def _distances(n: int, src: np.ndarray, dst: np.ndarray, kind: np.ndarray, in_number: np.ndarray, accept: np.ndarray,
               finished: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """``dist`` (tokens to finish, numbers counted ``width`` tokens) and ``exit`` (tokens to
    finish from the moment a number may end), by relaxation. kind: 0 plain, 1 number ends, 2 stays."""
    dist = np.full(n, INF, np.int64)
    exit_ = np.full(n, INF, np.int64)
    dist[finished] = 0
    plain, ends, stays = kind == 0, kind == 1, kind == 2
    for _ in range(4 * n):
        before = (dist.copy(), exit_.copy())
        np.minimum.at(dist, src[plain], 1 + dist[dst[plain]])
        np.minimum.at(exit_, src[ends], 1 + dist[dst[ends]])
        np.minimum.at(exit_, src[stays], exit_[dst[stays]])
        dist = np.where(in_number, np.minimum(dist, width + exit_), dist)
        dist[accept] = np.minimum(dist[accept], 1)
        if (dist == before[0]).all() and (exit_ == before[1]).all():
            break
    return dist, exit_


def _pad(rows: list[np.ndarray], fill_empty: int, dtype: Any) -> tuple[np.ndarray, np.ndarray]:
    """Rows padded to a common width by repeating their last entry (sorted rows stay sorted,
    and a scatter writes the same value for a repeat as for the entry); empty rows get
    ``fill_empty`` marked invalid, so their scatter writes back what is there."""
    width = max(1, max(len(r) for r in rows))
    out = np.empty((len(rows), width), dtype)
    valid = np.zeros((len(rows), width), bool)
    for i, r in enumerate(rows):
        if len(r):
            out[i, : len(r)] = r
            out[i, len(r):] = r[-1]
            valid[i] = True
        else:
            out[i] = fill_empty
    return out, valid


def compile_tables(grammar: ComposedGrammar, vocab: Vocabulary) -> TokenTables:
    t0 = time.perf_counter()
    dfa = build_byte_dfa(grammar)
    trans = token_transitions(dfa, vocab.tokens)
    t_sim = time.perf_counter() - t0
    n_dfa = dfa.n_states
    finished = n_dfa
    n = n_dfa + 1
    in_number = np.append(dfa.slot >= 0, False)
    accept = np.append(dfa.accept, False)

    # numeric descriptors for pairs touching a number; leave out the ones the runtime cannot track
    steps: dict[tuple[int, int], NumberStep] = {}
    keep = np.ones(len(trans.state), bool)
    excluded = 0
    for k in np.nonzero(trans.touches_number)[0]:
        s, t = int(trans.state[k]), int(trans.token[k])
        step = describe(dfa, s, vocab.tokens[t])  # type: ignore[arg-type]
        if step is None:
            keep[k] = False
            excluded += 1
        else:
            steps[(s, t)] = step
    src, tok, dst, touch = trans.state[keep], trans.token[keep], trans.next[keep], trans.touches_number[keep]
    # Edges for the distances: only those every row can take whatever its bounds. A token
    # that starts a number counts only if it is a lone digit (some digit always fits the
    # bounds); a token that ends a number and starts the next does not count.
    kind = np.zeros(len(src), np.int64)
    ends = np.zeros(len(src), np.int64)
    starts = np.zeros(len(src), np.int64)
    for k in np.nonzero(touch)[0]:
        step = steps[(int(src[k]), int(tok[k]))]
        ends[k], starts[k] = step.ends, step.starts
    token_length = np.fromiter((len(t or b"") for t in vocab.tokens), dtype=np.int64, count=len(vocab.tokens))
    lone_digit = token_length[tok] == 1  # a one-byte token that starts a number is a digit
    from_number = in_number[src]
    kind[from_number & (ends == 1)] = 1
    kind[from_number & (ends == 0)] = 2
    kind[(starts == 1) & ~(lone_digit & ~from_number)] = 3  # ignored by the distances
    width = number_chars(grammar)
    dist, exit_ = _distances(n, src, dst, kind, in_number, accept, finished, width)
    dist[dfa.dead] = -INF  # replaying a completion that left the grammar: nothing is masked any more
    live = dist[dst] < INF
    src, tok, dst, touch = src[live], tok[live], dst[live], touch[live]

    order = np.lexsort((tok, src))
    src, tok, dst, touch = src[order], tok[order], dst[order], touch[order]
    bounds = np.searchsorted(src, np.arange(n + 1))
    eos = np.array(vocab.eos_ids, np.int64)
    V = vocab.size
    ex_rows, ex_next_rows, ex_dist_rows, deny_rows, num_rows, num_fields = [], [], [], [], [], []
    default_next = np.zeros(n, np.int64)
    default_dist = np.full(n, INF, np.int64)
    slot = np.append(dfa.slot, -1).astype(np.int64)
    for s in range(n):
        a, b = bounds[s], bounds[s + 1]
        toks, nxt, th = tok[a:b], dst[a:b], touch[a:b]
        if s == finished:
            toks, nxt, th = eos, np.full(len(eos), finished), np.zeros(len(eos), bool)
        elif accept[s]:
            toks, nxt, th = np.concatenate([toks, eos]), np.concatenate([nxt, np.full(len(eos), finished)]), np.concatenate([th, np.zeros(len(eos), bool)])
            o = np.argsort(toks, kind="stable")
            toks, nxt, th = toks[o], nxt[o], th[o]
        if s == dfa.dead:
            default_next[s], default_dist[s] = s, -INF
            explicit = np.zeros(0, bool)
            deny_rows.append(np.zeros(0, np.int64))
        elif len(toks) > V // 2:
            plain_next = nxt[~th]
            default_next[s] = np.bincount(plain_next).argmax() if len(plain_next) else s
            default_dist[s] = dist[default_next[s]]
            explicit = (nxt != default_next[s]) | th
            allowed = np.zeros(V, bool)
            allowed[toks] = True
            deny_rows.append(np.nonzero(~allowed)[0])
        else:
            default_next[s] = dfa.dead
            explicit = np.ones(len(toks), bool)
            deny_rows.append(np.zeros(0, np.int64))
        ex_rows.append(toks[explicit])
        ex_next_rows.append(nxt[explicit])
        ex_dist_rows.append(np.where(th[explicit], -INF, dist[nxt[explicit]]))
        nt = toks[th]
        num_rows.append(nt)
        ns = [steps[(s, int(t))] for t in nt]
        nn = nxt[th]
        num_fields.append({**{f: np.array([getattr(x, f) for x in ns], np.int64) for f in NUMBER_FIELDS},
                           "dist_next": dist[nn], "exit_next": exit_[nn]})
    arrays: dict[str, np.ndarray] = {"eos_ids": eos, "dist": dist, "exit": exit_, "default_next": default_next, "default_dist": default_dist,
                                     "slot": slot, "axis": np.append(dfa.axis, -1).astype(np.int64),
                                     "above": np.append(dfa.above, -1).astype(np.int64),
                                     "capped": np.append(dfa.capped, False), "in_number": in_number}
    arrays["ex_tok"], arrays["ex_valid"] = _pad(ex_rows, 0, np.int64)
    arrays["ex_next"], _ = _pad(ex_next_rows, 0, np.int64)
    arrays["ex_next"][~arrays["ex_valid"]] = default_next[np.nonzero(~arrays["ex_valid"])[0]]
    arrays["ex_dist"], _ = _pad(ex_dist_rows, -INF, np.int64)
    arrays["deny_tok"], arrays["deny_valid"] = _pad(deny_rows, 0, np.int64)
    arrays["num_tok"], arrays["num_valid"] = _pad(num_rows, 0, np.int64)
    for f in NUMBER_FIELDS + ["dist_next", "exit_next"]:
        arrays["num_" + f], _ = _pad([nf[f] for nf in num_fields], 0, np.int64)
    reachable_dead = dist[dfa.start] >= INF
    if reachable_dead:
        raise GrammarError("no token sequence of this tokenizer can complete the grammar")
    stats = {
        "dfa_states": n_dfa, "token_pairs": int(len(src)), "excluded_number_tokens": excluded,
        "explicit_width": int(arrays["ex_tok"].shape[1]), "deny_width": int(arrays["deny_tok"].shape[1]),
        "number_width": int(arrays["num_tok"].shape[1]), "simulate_s": round(t_sim, 3),
        "compile_s": round(time.perf_counter() - t0, 3), "min_tokens": int(dist[dfa.start]),
    }
    return TokenTables(V, dfa.start, finished, dfa.dead, grammar.frame.max_decimals, width, arrays, stats)


# --- disk cache ------------------------------------------------------------------------------
def cache_dir() -> Path:
    root = os.environ.get(CACHE_ENV) or os.path.join(os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "groundkit")
    return Path(root) / "decoding"


def cache_key(grammar: ComposedGrammar, fingerprint: str, eos_ids: list[int]) -> str:
    """Tables depend on the grammar text (incl. the frame's number syntax), the tokenizer and EOS ids."""
    h = hashlib.sha256(f"{COMPILER_HASH}\0{grammar.text}\0{fingerprint}\0{eos_ids}".encode())
    return h.hexdigest()[:40]


def save_tables(tables: TokenTables, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = np.array([tables.vocab_size, tables.start, tables.finished, tables.dead, tables.max_decimals, tables.number_chars])
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        np.savez(f, __meta=meta, **tables.arrays)
    os.replace(tmp, path)  # atomic: concurrent builders never see a half-written file


class DecodingWarning(UserWarning):
    """Decoding went on in a degraded way: a rebuilt cache, a budget cut short by generate()."""


_REQUIRED = ("eos_ids", "dist", "exit", "default_next", "default_dist", "slot", "ex_tok", "ex_valid", "ex_next", "ex_dist",
             "deny_tok", "deny_valid", "num_tok", "num_valid")


def load_tables(path: Path) -> TokenTables | None:
    """Tables from a cache file; None when it is absent, and None with a :class:`DecodingWarning`
    when it is truncated, foreign or otherwise unreadable (the caller rebuilds it)."""
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
        meta = [int(v) for v in arrays.pop("__meta").tolist()]
        missing = [k for k in _REQUIRED if k not in arrays]
        if len(meta) != 6 or missing:
            raise ValueError(f"not a groundkit table file (meta {len(meta)} values, missing {missing[:3]})")
        return TokenTables(*meta, arrays=arrays, stats={"loaded_from": str(path)})
    except (OSError, ValueError, EOFError, KeyError, TypeError, zipfile.BadZipFile) as exc:
        warnings.warn(f"decoding-table cache {path} is unreadable ({type(exc).__name__}: {exc}); rebuilding it",
                      DecodingWarning, stacklevel=3)
        return None


def get_tables(grammar: ComposedGrammar, vocab: Vocabulary, use_cache: bool = True) -> TokenTables:
    """Tables for (grammar, tokenizer): from the disk cache when present, else compiled and stored."""
    path = cache_dir() / f"{cache_key(grammar, vocab.fingerprint, vocab.eos_ids)}.npz"
    if use_cache:
        cached = load_tables(path)
        if cached is not None:
            return cached
    tables = compile_tables(grammar, vocab)
    if use_cache:
        try:
            save_tables(tables, path)
        except OSError:
            pass  # a read-only cache folder only costs a recompile next time
    return tables


__all__ = ["ByteDFA", "DecodingWarning", "TokenTables", "compile_tables", "get_tables"]
