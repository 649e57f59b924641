"""Judges for iVGR's consistency reward: how well a textual completion agrees with a grounded one.

A judge scores pairs (textual trace, best grounded trace of the same sample, ground truth)
in batches, returning one float in [0, 1] per pair. :class:`OverlapJudge` is the
deterministic default; an LLM judge subclasses :class:`ConsistencyJudge`, implements
:meth:`ConsistencyJudge.judge` (batching its prompts), and is used through a reward-term
plugin that subclasses the ``consistency`` term with its own name and ``judge``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from groundkit.rewards.answers import answers_agree
from groundkit.rewards.groundtruth import GroundTruth
from groundkit.rewards.matching import label_forms
from groundkit.trace import Trace

_TOKEN = re.compile(r"[a-z0-9]+")

JudgePair = tuple[Trace, Trace, "GroundTruth | None"]


class ConsistencyJudge:
    """Base class of consistency judges. Keep judges picklable (plain data, no open clients)."""

    def judge(self, pairs: Sequence[JudgePair]) -> list[float]:
        raise NotImplementedError


def _mentions(text: str) -> set[str]:
    """Every word and two-word phrase of a text, in each singular/plural form."""
    words = _TOKEN.findall(text.lower())
    out: set[str] = set()
    for k, w in enumerate(words):
        out |= label_forms(w)
        if k:
            out |= label_forms(f"{words[k - 1]} {w}")
    return out


def _concepts(form_sets: Sequence[frozenset[str]]) -> list[frozenset[str]]:
    """Merge sets of label forms that overlap (same object: singular/plural, synonyms) into concepts."""
    groups: list[frozenset[str]] = []
    for forms in form_sets:
        merged = [g for g in groups if not g.isdisjoint(forms)]
        groups = [g for g in groups if g.isdisjoint(forms)] + [frozenset(forms.union(*merged))]
    return groups


@dataclass(frozen=True)
class OverlapJudge(ConsistencyJudge):
    """``answer_weight`` x (answers agree) + (1 - ``answer_weight``) x (object overlap).

    Object overlap is the Jaccard index between the labels the grounded completion grounds
    and the objects the textual completion names, where a named object is a grounded label
    or a ground-truth object label or synonym found in its text (case/plural-insensitive). Without
    labelled groundings the score is answer agreement alone.
    """

    answer_weight: float = 0.5

    def judge(self, pairs: Sequence[JudgePair]) -> list[float]:
        return [self.judge_one(t, g, truth) for t, g, truth in pairs]

    def judge_one(self, textual: Trace, grounded: Trace, truth: GroundTruth | None) -> float:
        agree = float(answers_agree(textual.answer, grounded.answer))
        grounded_labels = [g.label for g in grounded.groundings if g.label and g.label.strip()]
        if not grounded_labels:
            return agree
        mentioned = _mentions(f"{textual.thought} {textual.answer or ''}")
        truth_keys = [o.keys for o in truth.objects] if truth is not None and truth.objects else []
        concepts = _concepts([label_forms(label) for label in grounded_labels] + truth_keys)
        grounded_forms = set().union(*(label_forms(label) for label in grounded_labels))
        is_grounded = {c for c in concepts if not c.isdisjoint(grounded_forms)}
        is_named = {c for c in concepts if not c.isdisjoint(mentioned)}
        overlap = len(is_named & is_grounded) / len(is_named | is_grounded)
        return self.answer_weight * agree + (1 - self.answer_weight) * overlap
