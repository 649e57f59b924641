"""Statistics of an experiment: bootstrap confidence intervals and answer baselines."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np


def bootstrap_ci(values: Sequence[float], seed: int = 0, level: float = 0.95, resamples: int = 2000) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean (scipy); (nan, nan) for fewer than 2 values."""
    from scipy.stats import bootstrap

    data = np.asarray(values, dtype=float)
    if data.size < 2:
        return (float("nan"), float("nan"))
    if np.all(data == data[0]):
        return (float(data[0]), float(data[0]))
    res = bootstrap((data,), np.mean, confidence_level=level, n_resamples=resamples, method="percentile",
                    random_state=np.random.default_rng(seed))
    return (float(res.confidence_interval.low), float(res.confidence_interval.high))


def paired_difference_ci(a: Sequence[float], b: Sequence[float], seed: int = 0, level: float = 0.95,
                         resamples: int = 2000) -> tuple[float, tuple[float, float]]:
    """Mean of ``a - b`` over the same records and its paired percentile bootstrap CI."""
    diff = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    return float(diff.mean()) if diff.size else float("nan"), bootstrap_ci(diff, seed, level, resamples)


def majority_baseline(train_answers: Sequence[str], test_answers: Sequence[str]) -> tuple[str, float]:
    """The most common training answer and its accuracy on the test answers."""
    if not train_answers or not test_answers:
        return ("", float("nan"))
    answer = Counter(train_answers).most_common(1)[0][0]
    return answer, sum(a == answer for a in test_answers) / len(test_answers)


def chance_baseline(train_answers: Sequence[str], test_answers: Sequence[str]) -> float:
    """Expected accuracy of guessing uniformly among the answers seen in training."""
    support = set(train_answers)
    if not support or not test_answers:
        return float("nan")
    return sum(1 / len(support) for a in test_answers if a in support) / len(test_answers)
