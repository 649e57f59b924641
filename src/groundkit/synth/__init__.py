"""SFT data for grounded thinking: distil correct traces, extract the objects they rely on,
ground them (SAM3 or an oracle), derive points / boxes / polygons, align them into the text.

``run_synth(load_config("synth.yaml"))`` or ``groundkit synth --config synth.yaml``.
"""

from groundkit.interfaces.synth import (
    ExtractionItem,
    Extractor,
    Grounder,
    GroundingQuery,
    MaskCandidate,
    Mention,
)
from groundkit.synth.align import AMBIGUITY, GROUNDINGS, Dropped, GroundedObject, ground_trace, resolve
from groundkit.synth.config import (
    OutputConfig,
    PluginConfig,
    SynthConfig,
    TeacherConfig,
    config_from_dict,
    load_config,
)
from groundkit.synth.derive import mask_box, mask_interior_point, mask_polygon
from groundkit.synth.distil import (
    CompletionsTeacher,
    ModelTeacher,
    SimulatedTeacher,
    Source,
    Teacher,
    TeacherOutput,
    distil,
)
from groundkit.synth.extract import RuleExtractor, question_phrases
from groundkit.synth.pipeline import Pipeline, SynthSummary, run_synth
from groundkit.synth.writer import SynthStore

__all__ = [
    "AMBIGUITY", "GROUNDINGS", "CompletionsTeacher", "Dropped", "ExtractionItem", "Extractor", "GroundedObject", "Grounder",
    "GroundingQuery", "MaskCandidate", "Mention", "ModelTeacher", "OutputConfig", "Pipeline", "PluginConfig", "RuleExtractor",
    "SimulatedTeacher", "Source", "SynthConfig", "SynthStore", "SynthSummary", "Teacher", "TeacherConfig", "TeacherOutput",
    "config_from_dict", "distil", "ground_trace", "load_config", "mask_box", "mask_interior_point", "mask_polygon",
    "question_phrases", "resolve", "run_synth",
]
