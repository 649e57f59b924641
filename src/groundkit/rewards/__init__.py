"""The reward engine: terms scored over a batch that parses each completion once, weighted
into totals; ground truth, answer checks, matching, the consistency judge and the TRL adapter."""

from groundkit.interfaces.reward import RewardTerm
from groundkit.rewards.engine import NONE_POLICIES, RewardResult, RewardSet, Sample, ScoringBatch

__all__ = ["NONE_POLICIES", "RewardResult", "RewardSet", "RewardTerm", "Sample", "ScoringBatch"]
