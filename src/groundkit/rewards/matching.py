"""Label matching and one-to-one assignment, shared by the reward terms and evaluation.

Labels match case- and plural-insensitively (``"Mugs"`` matches ``"mug"``), ignoring a leading
article, and through an object's synonyms; an unlabelled prediction matches any object.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from functools import lru_cache

import numpy as np

_ARTICLE = re.compile(r"^(the|a|an)\s+")
_SPACE = re.compile(r"[\s_\-]+")


def _word_forms(word: str) -> set[str]:
    """The word and the singulars it may be the plural of (``knives`` -> knive, knif; ``knife`` -> knif)."""
    forms = {word}
    if len(word) <= 2:
        return forms
    if word.endswith("fe"):
        forms.add(word[:-2] + "f")
    if word.endswith("s") and not word.endswith(("ss", "us", "is")):
        forms.add(word[:-1])
        if word.endswith("es"):
            forms.add(word[:-2])
        if word.endswith("ies"):
            forms.add(word[:-3] + "y")
        if word.endswith("ves"):
            forms.add(word[:-3] + "f")
    return forms


@lru_cache(maxsize=65536)
def normalize_label(label: str) -> str:
    """Lower case, single spaces, no surrounding punctuation or leading article (``"The Red Mugs"`` -> ``"red mugs"``)."""
    text = _SPACE.sub(" ", label.strip().lower()).strip(" .,;:!?\"'")
    return _ARTICLE.sub("", text)


@lru_cache(maxsize=65536)
def label_forms(label: str) -> frozenset[str]:
    """Normalised forms of a label: as written and with its last word made singular."""
    text = normalize_label(label)
    head, _, last = text.rpartition(" ")
    prefix = head + " " if head else ""
    return frozenset(prefix + f for f in _word_forms(last))


def label_keys(label: str, synonyms: Iterable[str] = ()) -> frozenset[str]:
    """The forms an object answers to: those of its label and of each synonym."""
    keys: set[str] = set()
    for name in (label, *synonyms):
        keys |= label_forms(name)
    return frozenset(keys)


def labels_match(predicted: str | None, keys: frozenset[str]) -> bool:
    """Whether a predicted label names an object with these keys (None / blank matches anything)."""
    if predicted is None or not predicted.strip():
        return True
    return not keys.isdisjoint(label_forms(predicted))


def hungarian(score: np.ndarray, minimum: float = 1e-12) -> list[tuple[int, int]]:
    """One-to-one pairs (row, column) maximising the total score; pairs scoring below ``minimum`` are dropped."""
    if score.size == 0:
        return []
    from scipy.optimize import linear_sum_assignment  # imported on use: keeps `import groundkit` light

    rows, cols = linear_sum_assignment(score, maximize=True)
    return [(int(r), int(c)) for r, c in zip(rows, cols) if score[r, c] >= minimum]


def greedy_pairs(score: np.ndarray, minimum: float = 1e-12) -> list[tuple[int, int]]:
    """One-to-one pairs taken greedily by descending score (the baseline Hungarian never loses to)."""
    if score.size == 0:
        return []
    order = np.argsort(-score, axis=None, kind="stable")
    used_r: set[int] = set()
    used_c: set[int] = set()
    pairs = []
    for flat in order:
        r, c = divmod(int(flat), score.shape[1])
        if score[r, c] < minimum:
            break
        if r not in used_r and c not in used_c:
            used_r.add(r)
            used_c.add(c)
            pairs.append((r, c))
    return pairs


def pair_total(score: np.ndarray, pairs: Sequence[tuple[int, int]]) -> float:
    return float(sum(score[r, c] for r, c in pairs))


def box_iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in ``a`` (n, 4) against every box in ``b`` (m, 4), vectorised; 0 where both are empty."""
    a = np.asarray(a, dtype=float).reshape(-1, 4)
    b = np.asarray(b, dtype=float).reshape(-1, 4)
    ix = np.maximum(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0.0)
    iy = np.maximum(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0.0)
    inter = ix * iy
    area_a = np.maximum(a[:, 2] - a[:, 0], 0.0) * np.maximum(a[:, 3] - a[:, 1], 0.0)
    area_b = np.maximum(b[:, 2] - b[:, 0], 0.0) * np.maximum(b[:, 3] - b[:, 1], 0.0)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
