"""Reading answers: counts, numbers, yes/no, multiple-choice letters, free text; hedges detected.

A hedged answer (``"A or B"``, ``"2 or 3"``, ``"yes and no"``) names more than one candidate
and reads as no answer (None), so it never scores.
"""

from __future__ import annotations

import math
import re
import string

from groundkit.rewards.groundtruth import GroundTruth

NUMBER_WORDS = {
    w: i
    for i, w in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
        "sixteen seventeen eighteen nineteen twenty".split()
    )
}
_NUMBER = re.compile(r"(?<![\w.])-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?![\w])|(?<![\w.])-?\.\d+(?![\w])")
_WORD = re.compile(r"[a-z]+")
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = str.maketrans({c: " " for c in string.punctuation})
_LETTER_ONLY = re.compile(r"^\W*(?:option\s+|answer\s*:?\s*)?\(?([A-Za-z])\)?\W*$", re.IGNORECASE)
_ENGLISH_AFTER = re.compile(r"\s+(?!(?:or|and|nor)\b)[a-z]")
_STANDALONE = re.compile(r"(?<![A-Za-z'])\(?([A-Z])\)?(?![A-Za-z'])")


def normalize_answer(text: str) -> str:
    """Lower case, punctuation and articles removed, single spaces."""
    return " ".join(_ARTICLES.sub(" ", text.lower().translate(_PUNCT)).split())


def numbers_in(text: str) -> list[float]:
    """Every number written in digits (``1,024``, ``-3.5``) or as a word (``zero`` .. ``twenty``)."""
    found = [float(m.group().replace(",", "")) for m in _NUMBER.finditer(text)]
    found += [float(NUMBER_WORDS[w]) for w in _WORD.findall(text.lower()) if w in NUMBER_WORDS]
    return found


def single_number(text: str | None) -> float | None:
    """The one number an answer gives; None when it gives none or several different ones (a hedge)."""
    if text is None:
        return None
    values = set(numbers_in(text))
    return values.pop() if len(values) == 1 else None


def single_count(text: str | None) -> int | None:
    """The one non-negative integer an answer gives, else None."""
    value = single_number(text)
    if value is None or value < 0 or not float(value).is_integer():
        return None
    return int(value)


def yes_no(text: str | None) -> bool | None:
    """True for yes, False for no, None for neither or both."""
    if text is None:
        return None
    words = set(_WORD.findall(text.lower()))
    yes, no = bool(words & {"yes", "true"}), bool(words & {"no", "false"})
    return yes if yes != no else None


def choice_indices(text: str | None, choices: tuple[str, ...] = ()) -> set[int]:
    """The options an answer picks (0 = A). Several means a hedge; empty means none.

    A letter counts when it is the whole answer (``"b"``, ``"(B)"``, ``"Option C"``) or stands
    alone in upper case (``"B. red"``, ``"A or B"``; ``A`` / ``I`` followed by a lower-case
    word read as English, not as options). Without letters, an option's text must be the
    answer, or failing that be mentioned in it.
    """
    if text is None:
        return set()
    limit = len(choices) if choices else 26
    whole = _LETTER_ONLY.match(text)
    if whole:
        index = ord(whole.group(1).upper()) - 65
        return {index} if index < limit else set()
    picked = set()
    for m in _STANDALONE.finditer(text):
        letter = m.group(1)
        if letter in "AI" and _ENGLISH_AFTER.match(text, m.end()):
            continue
        if ord(letter) - 65 < limit:
            picked.add(ord(letter) - 65)
    if picked or not choices:
        return picked
    norm = normalize_answer(text)
    exact = {i for i, c in enumerate(choices) if normalize_answer(c) == norm}
    if exact:
        return exact
    padded = f" {norm} "
    return {i for i, c in enumerate(choices) if normalize_answer(c) and f" {normalize_answer(c)} " in padded}


def infer_answer_type(truth: GroundTruth) -> str:
    """The answer type when a record does not state it."""
    answer = truth.answer or ""
    if yes_no(answer) is not None and normalize_answer(answer) in ("yes", "no", "true", "false"):
        return "yes_no"
    if truth.choices:
        return "multiple_choice"
    if single_count(answer) is not None and normalize_answer(answer).isdigit():
        return "count"
    if single_number(answer) is not None and _NUMBER.fullmatch(answer.strip()):
        return "number"
    return "free_text"


def answer_correct(predicted: str | None, truth: GroundTruth, rel_tol: float = 0.01, abs_tol: float = 1e-6) -> float | None:
    """1.0 when ``predicted`` answers like the ground truth, 0.0 when not (or hedged), None without a reference."""
    if truth.answer is None:
        return None
    if predicted is None or not predicted.strip():
        return 0.0
    kind = truth.answer_type or infer_answer_type(truth)
    if kind == "count":
        want = single_count(truth.answer)
        return float(want is not None and single_count(predicted) == want)
    if kind == "number":
        want_n, got = single_number(truth.answer), single_number(predicted)
        if want_n is None or got is None:
            return 0.0
        return float(math.isclose(got, want_n, rel_tol=rel_tol, abs_tol=abs_tol))
    if kind == "yes_no":
        want_b = yes_no(truth.answer)
        return float(want_b is not None and yes_no(predicted) is want_b)
    if kind == "multiple_choice":
        want_i = choice_indices(truth.answer, truth.choices)
        return float(len(want_i) == 1 and choice_indices(predicted, truth.choices) == want_i)
    return float(normalize_answer(predicted) == normalize_answer(truth.answer))


def answers_agree(a: str | None, b: str | None) -> bool:
    """Whether two predicted answers say the same thing (numbers, yes/no, letters, else normalised text)."""
    if a is None or b is None:
        return False
    na, nb = single_number(a), single_number(b)
    if na is not None or nb is not None:
        return na is not None and nb is not None and math.isclose(na, nb, rel_tol=1e-6, abs_tol=1e-9)
    ya, yb = yes_no(a), yes_no(b)
    if ya is not None or yb is not None:
        return ya is yb
    return normalize_answer(a) == normalize_answer(b)
