"""The text format: grammar composition from dialect skeletons and grounding-type rules, the
parser (text -> Trace), the formatter (Trace -> text) and the regex fast path."""

from groundkit.text.formatter import convert, format_grounding, format_trace
from groundkit.text.grammar import ComposedGrammar, get_grammar, supported_types
from groundkit.text.parser import TraceParser, get_parser, parse

__all__ = [
    "ComposedGrammar", "TraceParser", "convert", "format_grounding", "format_trace", "get_grammar", "get_parser",
    "parse", "supported_types",
]
