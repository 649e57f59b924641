"""The rule-based extractor: noun phrases of the thought that name the question's objects.

Targets are the annotated objects' labels (with synonyms) when the record has objects, else
the noun phrases of the question (``How many red circles ...`` -> ``red circles``; ``Is the
blue square left of the cup?`` -> ``blue square``, ``cup``). The thought is scanned left to
right for word n-grams (longest first) whose label forms match a target (singular and plural
forms, as reward matching does); each target is grounded once, at its first mention.
A mention is plural when written in the plural, after a quantifier (``every``, ``all``,
``two``), or when it names what a counting question counts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from groundkit.interfaces.synth import ExtractionItem, Extractor, Mention
from groundkit.rewards.answers import NUMBER_WORDS
from groundkit.rewards.matching import label_forms, label_keys, normalize_label

_WORD = re.compile(r"[A-Za-z][A-Za-z'-]*")
DETERMINERS = {"the", "a", "an", "every", "each", "all", "many", "any", "some", "these", "those", "this", "that"}
QUANTIFIERS = {"every", "all", "each", "many", "several", "both", "these", "those", *NUMBER_WORDS}
STOP = {
    "is", "are", "was", "were", "there", "of", "to", "in", "on", "at", "left", "right", "above", "below", "relative",
    "than", "closer", "larger", "smaller", "and", "or", "with", "image", "picture", "photo", "scene", "centre",
    "center", "which", "what", "where", "how", "do", "does", "you", "see", "can", "next", "behind", "front", "near",
    "under", "over", "between", "from", "by", "it", "its", "their", "visible", "shown", "total", "number",
}


@dataclass(frozen=True)
class Target:
    label: str
    keys: frozenset[str]


def question_phrases(question: str) -> list[str]:
    """Noun phrases after a determiner in the question (at most three words, stop words end them)."""
    words = [w.lower() for w in _WORD.findall(question)]
    out: list[str] = []
    for i, w in enumerate(words):
        if w not in DETERMINERS:
            continue
        phrase: list[str] = []
        for nxt in words[i + 1 : i + 4]:
            if nxt in STOP or nxt in DETERMINERS:
                break
            phrase.append(nxt)
        if phrase and " ".join(phrase) not in out:
            out.append(" ".join(phrase))
    return out


def targets_of(item: ExtractionItem) -> list[Target]:
    """What the trace may mention: the record's object labels, else the question's noun phrases."""
    seen: dict[str, Target] = {}
    for obj in item.truth.objects or ():
        key = normalize_label(obj.label)
        if key not in seen:
            seen[key] = Target(obj.label, label_keys(obj.label, obj.synonyms))
    if not seen:
        for phrase in question_phrases(item.question):
            seen[phrase] = Target(phrase, label_keys(phrase))
    return list(seen.values())


@dataclass(frozen=True)
class RuleExtractor(Extractor):
    """Noun phrases of the thought tied to the question's objects (see the module docstring).

    ``max_words``: the longest phrase tried; ``count_plural``: mentions of what a counting
    question counts take every mask found.
    """

    max_words: int = 4
    count_plural: bool = True
    name = "rule"
    description = "noun phrases of the thought that name the question's (annotated) objects"

    def extract_one(self, item: ExtractionItem) -> list[Mention]:
        targets = targets_of(item)
        words = [(m.start(), m.end()) for m in _WORD.finditer(item.thought)]
        text = item.thought
        found: list[Mention] = []
        done: set[str] = set()
        i = 0
        while i < len(words) and len(done) < len(targets):
            hit = self._match_at(text, words, i, targets, done)
            if hit is None:
                i += 1
                continue
            n, target = hit
            start, end = words[i][0], words[i + n - 1][1]
            phrase = text[start:end]
            prev = text[words[i - 1][0] : words[i - 1][1]].lower() if i else ""
            plural = normalize_label(phrase) not in target.keys or prev in QUANTIFIERS or prev.isdigit()
            if self.count_plural and item.truth.answer_type == "count":
                plural = True
            found.append(Mention(phrase, target.label, start, end, plural))
            done.add(target.label)
            i += n
        return found

    def _match_at(self, text: str, words: list[tuple[int, int]], i: int, targets: list[Target], done: set[str]) -> tuple[int, Target] | None:
        for n in range(min(self.max_words, len(words) - i), 0, -1):
            span = text[words[i][0] : words[i + n - 1][1]]
            if n > 1 and not re.fullmatch(r"[A-Za-z'-]+(?: [A-Za-z'-]+)*", span):
                continue  # words must be adjacent, separated by single spaces
            forms = label_forms(span)
            for t in targets:
                if t.label not in done and not t.keys.isdisjoint(forms):
                    return n, t
        return None
