"""groundkit: vision-language models that think with visual grounding.

The public API. Plugins (built-in ones included) import only from here.
"""

from groundkit.backbones import (
    GEMMA_CHAT_TEMPLATE,
    QWEN_CHAT_TEMPLATE,
    Backbone,
    BackboneError,
    LoadedModel,
    generate,
    load_model,
    qwen_tokenizer,
    sentencepiece_tokenizer,
    train_tokenizer,
)
from groundkit.decoding import grounded_logits_processor, replay_mask
from groundkit.decoding.backends import GroundkitBackend
from groundkit.decoding.exports import (
    PerImageBoundError,
    export_ebnf,
    export_lark,
    export_regex,
    free_text_terminals,
)
from groundkit.errors import (
    ConfigError,
    DataError,
    FormatError,
    FrameError,
    GrammarError,
    GroundkitError,
    ParseError,
    PluginError,
    UnknownNameError,
)
from groundkit.eval.benchmarks import (
    Row,
    find_image,
    image_bases,
    image_file,
    load_benchmark,
    missing_image,
    option_letter,
    read_image_size,
    read_rows,
    truth_from_fields,
)
from groundkit.frames import (
    Frame,
    FrameWarning,
    ImageSize,
    OriginalPixelFrame,
    ResizedPixelFrame,
    resize_params,
    resized_frame_spec,
    smart_resize,
)
from groundkit.geometry import (
    box_area,
    box_contains,
    box_iou,
    mask_bbox,
    mask_iou,
    point_in_polygon,
    polygon_area,
    polygon_bbox,
    rasterize_polygon,
    rle_decode,
    rle_encode,
)
from groundkit.hookspecs import hookimpl
from groundkit.interfaces import (
    BenchmarkAdapter,
    DecodingBackend,
    Dialect,
    Experiment,
    ExperimentOptions,
    GroundingType,
    ModelSize,
    Syntax,
    default_reader,
    read_grammar,
)
from groundkit.registry import Registry, build_registry, get_registry, set_registry
from groundkit.render import render
from groundkit.rewards import RewardResult, RewardSet, RewardTerm, Sample, ScoringBatch
from groundkit.rewards.answers import (
    answer_correct,
    answers_agree,
    choice_indices,
    single_count,
    single_number,
    yes_no,
)
from groundkit.rewards.consistency import ConsistencyJudge, OverlapJudge
from groundkit.rewards.groundtruth import GroundTruth, ObjectTruth, load_ground_truth, read_ground_truth
from groundkit.rewards.matching import (
    box_iou_matrix,
    greedy_pairs,
    hungarian,
    label_forms,
    label_keys,
    labels_match,
)
from groundkit.synth import (
    CompletionsTeacher,
    ExtractionItem,
    Extractor,
    Grounder,
    GroundingQuery,
    MaskCandidate,
    Mention,
    ModelTeacher,
    RuleExtractor,
    SimulatedTeacher,
    SynthConfig,
    SynthSummary,
    mask_box,
    mask_interior_point,
    mask_polygon,
    run_synth,
)
from groundkit.synth import load_config as load_synth_config
from groundkit.text.formatter import convert, format_grounding, format_trace
from groundkit.text.grammar import ComposedGrammar, get_grammar, supported_types
from groundkit.text.parser import TraceParser, get_parser, parse
from groundkit.trace import Grounding, Text, Trace

__version__ = "0.1.0"

# Training needs torch/trl/peft: loaded on first use, so ``import groundkit`` stays light.
_LAZY_TRAINING = ("train_sft", "train_grpo", "build_sft", "build_grpo", "load_config", "TrainConfig", "ConfigError")


# Experiments train models too: loaded on first use as well.
_LAZY_EXPERIMENTS = ("run_experiment", "CountingExperiment")


def __getattr__(name: str):
    if name in _LAZY_TRAINING:
        import groundkit.training as training

        return getattr(training, name)
    if name in _LAZY_EXPERIMENTS:
        import groundkit.experiments as experiments
        from groundkit.experiments.counting import CountingExperiment

        return CountingExperiment if name == "CountingExperiment" else getattr(experiments, name)
    raise AttributeError(f"module 'groundkit' has no attribute {name!r}")

__all__ = [
    "GEMMA_CHAT_TEMPLATE", "QWEN_CHAT_TEMPLATE", "Backbone", "BackboneError", "LoadedModel", "ModelSize", "load_model",
    "qwen_tokenizer", "sentencepiece_tokenizer", "generate", "train_tokenizer",
    "ComposedGrammar", "DataError", "Dialect", "Experiment", "ExperimentOptions", "FormatError", "Frame", "FrameError", "GrammarError",
    "Grounding", "GroundingType", "GroundkitError", "ImageSize", "OriginalPixelFrame", "ParseError",
    "PluginError", "Registry", "ResizedPixelFrame", "Syntax", "Text", "Trace", "TraceParser",
    "UnknownNameError", "box_area", "box_contains", "box_iou", "build_registry", "convert",
    "default_reader", "format_grounding", "format_trace", "get_grammar", "get_parser", "get_registry",
    "hookimpl", "mask_bbox", "mask_iou", "parse", "point_in_polygon", "polygon_area", "polygon_bbox",
    "rasterize_polygon", "read_grammar", "render", "rle_decode", "rle_encode", "set_registry",
    "smart_resize", "supported_types", "FrameWarning", "resize_params", "resized_frame_spec",
    # rewards
    "ConsistencyJudge", "GroundTruth", "ObjectTruth", "OverlapJudge", "RewardResult", "RewardSet", "RewardTerm",
    "Sample", "ScoringBatch", "answer_correct", "answers_agree", "box_iou_matrix", "choice_indices", "greedy_pairs",
    "hungarian", "label_forms", "label_keys", "labels_match", "load_ground_truth", "read_ground_truth",
    "single_count", "single_number", "yes_no",
    # decoding backends and grammar exports
    "DecodingBackend", "GroundkitBackend", "grounded_logits_processor", "replay_mask", "PerImageBoundError", "export_ebnf", "export_lark", "export_regex", "free_text_terminals",
    # benchmarks
    "BenchmarkAdapter", "Row", "find_image", "image_bases", "image_file", "load_benchmark", "missing_image", "option_letter",
    "read_image_size", "read_rows", "truth_from_fields",
    # synthesis
    "CompletionsTeacher", "ConfigError", "ExtractionItem", "Extractor", "Grounder", "GroundingQuery", "MaskCandidate", "Mention",
    "ModelTeacher", "RuleExtractor", "SimulatedTeacher", "SynthConfig", "SynthSummary", "load_synth_config", "mask_box",
    "mask_interior_point", "mask_polygon", "run_synth",
]
