"""Plugin interfaces: the base classes each plugin family implements.

They sit in the core, next to the registry that checks registrations against them, and
import nothing that implements them (grammar composition, decoding, rewards, models).
"""

from groundkit.interfaces.backbone import Backbone, BackboneError, LoadedModel, ModelSize
from groundkit.interfaces.benchmark import BenchmarkAdapter
from groundkit.interfaces.decoding import DecodingBackend
from groundkit.interfaces.dialect import Dialect, read_grammar
from groundkit.interfaces.experiment import Experiment, ExperimentOptions
from groundkit.interfaces.grounding import GroundingType, RawGrounding, Syntax, default_reader
from groundkit.interfaces.reward import RewardTerm
from groundkit.interfaces.synth import (
    ExtractionItem,
    Extractor,
    Grounder,
    GroundingQuery,
    MaskCandidate,
    Mention,
)

__all__ = [
    "Backbone", "BackboneError", "BenchmarkAdapter", "DecodingBackend", "Dialect", "Experiment", "ExperimentOptions", "ExtractionItem", "Extractor",
    "Grounder", "GroundingQuery", "GroundingType", "LoadedModel", "MaskCandidate", "ModelSize", "Mention", "RawGrounding",
    "RewardTerm", "Syntax", "default_reader", "read_grammar",
]
