"""groundkit: vision-language models that think with visual grounding.

The public API. Plugins (built-in ones included) import only from here.
"""

from groundkit.backbones import (
    GEMMA_CHAT_TEMPLATE,
    QWEN_CHAT_TEMPLATE,
    Backbone,
    BackboneError,
    LoadedModel,
    load_model,
    qwen_tokenizer,
    sentencepiece_tokenizer,
)
from groundkit.dialects import Dialect, read_grammar
from groundkit.errors import (
    DataError,
    FormatError,
    FrameError,
    GrammarError,
    GroundkitError,
    ParseError,
    PluginError,
    UnknownNameError,
)
from groundkit.formatter import convert, format_grounding, format_trace
from groundkit.frames import Frame, ImageSize, OriginalPixelFrame, ResizedPixelFrame, smart_resize
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
from groundkit.grammar import ComposedGrammar, get_grammar, supported_types
from groundkit.grounding import GroundingType, Syntax, default_reader
from groundkit.hookspecs import hookimpl
from groundkit.parser import TraceParser, get_parser, parse
from groundkit.registry import Registry, build_registry, get_registry, set_registry
from groundkit.render import render
from groundkit.trace import Grounding, Text, Trace

__version__ = "0.1.0"

__all__ = [
    "GEMMA_CHAT_TEMPLATE", "QWEN_CHAT_TEMPLATE", "Backbone", "BackboneError", "LoadedModel", "load_model",
    "qwen_tokenizer", "sentencepiece_tokenizer",
    "ComposedGrammar", "DataError", "Dialect", "FormatError", "Frame", "FrameError", "GrammarError",
    "Grounding", "GroundingType", "GroundkitError", "ImageSize", "OriginalPixelFrame", "ParseError",
    "PluginError", "Registry", "ResizedPixelFrame", "Syntax", "Text", "Trace", "TraceParser",
    "UnknownNameError", "box_area", "box_contains", "box_iou", "build_registry", "convert",
    "default_reader", "format_grounding", "format_trace", "get_grammar", "get_parser", "get_registry",
    "hookimpl", "mask_bbox", "mask_iou", "parse", "point_in_polygon", "polygon_area", "polygon_bbox",
    "rasterize_polygon", "read_grammar", "render", "rle_decode", "rle_encode", "set_registry",
    "smart_resize", "supported_types",
]
