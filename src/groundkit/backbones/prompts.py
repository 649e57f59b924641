"""Prompts generated from the grammar, so the instruction and the decoder never disagree."""

from __future__ import annotations

from groundkit.errors import GroundkitError, PluginError
from groundkit.frames import ImageSize
from groundkit.interfaces.grounding import GroundingType
from groundkit.text.formatter import format_trace
from groundkit.text.grammar import ComposedGrammar
from groundkit.trace import Grounding, Text, Trace

# Own chat templates for tiny models (real checkpoints bring theirs).
QWEN_CHAT_TEMPLATE = (
    "{%- for m in messages -%}<|im_start|>{{ m.role }}\n"
    "{% if m.content is string %}{{ m.content }}{% else %}{% for c in m.content %}"
    "{% if c.type == 'image' %}<|vision_start|><|image_pad|><|vision_end|>{% elif c.type == 'text' %}{{ c.text }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n{% endfor -%}"
    "{%- if add_generation_prompt %}<|im_start|>assistant\n{% endif -%}"
)
GEMMA_CHAT_TEMPLATE = (
    "{{ bos_token }}{%- set first = messages[0] -%}"
    "{%- if first.role == 'system' -%}{%- set sys = first.content if first.content is string else first.content[0].text -%}"
    "{%- else -%}{%- set sys = '' -%}{%- endif -%}"
    "{%- for m in messages if m.role != 'system' -%}<start_of_turn>{{ 'model' if m.role == 'assistant' else m.role }}\n"
    "{% if loop.first and sys %}{{ sys }}\n\n{% endif %}"
    "{% if m.content is string %}{{ m.content }}{% else %}{% for c in m.content %}"
    "{% if c.type == 'image' %}<start_of_image>{% elif c.type == 'text' %}{{ c.text }}{% endif %}{% endfor %}{% endif %}"
    "<end_of_turn>\n{% endfor -%}{%- if add_generation_prompt %}<start_of_turn>model\n{% endif -%}"
)


def example_grounding(gtype: GroundingType) -> Grounding:
    """A typical grounding of ``gtype``: its :meth:`~GroundingType.example`, or, when it gives
    none, values spread over the image (0.2 .. 0.7) labelled with the type's name.

    A bad example (another type, wrong values, below a minimum) is a :class:`PluginError`.
    """
    g = gtype.example()
    if g is None:
        n = gtype.arity or 2 * gtype.min_vertices
        return Grounding(gtype.name, tuple(0.2 + 0.5 * i / max(1, n - 1) for i in range(n)), gtype.name)
    if not isinstance(g, Grounding) or g.type != gtype.name:
        raise PluginError(f"grounding type {gtype.name!r}: example() must return a Grounding of type {gtype.name!r}, got {g!r}")
    hit = gtype.check_minimums(g.coords)
    problem = gtype.check_values(g.coords) or (hit[1] if hit else None)
    if problem or not all(0.0 <= c <= 1.0 for c in g.coords):
        raise PluginError(f"grounding type {gtype.name!r}: example() is not a valid grounding: "
                          f"{problem or 'coordinates must be unit values in [0, 1]'}")
    return g


def example_trace(grammar: ComposedGrammar, image_size: ImageSize | None = None) -> str:
    """One complete example in the grammar's dialect, frame and grounding types."""
    segments: list[Text | Grounding] = [Text("The question is about ")]
    for i, gtype in enumerate(grammar.types):
        g = example_grounding(gtype)
        segments += [Text(("" if i == 0 else ", and the ") + (g.label or gtype.name) + " "), g]
    segments.append(Text(". Looking at them I can answer."))
    return format_trace(Trace(tuple(segments), "2"), grammar.dialect.name, grammar.frame.name, image_size=image_size, lossy=True)


#: How a prompt states the output format: ``full`` (a system message describing the grammar, with one
#: example trace) or ``none`` (no system message: a model fine-tuned on the format needs none, and the
#: full instruction is ~250 tokens, most of a short example's sequence).
INSTRUCTION_MODES = ("full", "none")


def check_instruction_mode(mode: str) -> None:
    """A :class:`GroundkitError` naming the choices when ``mode`` is not one of :data:`INSTRUCTION_MODES`."""
    if mode not in INSTRUCTION_MODES:
        raise GroundkitError(f"unknown instruction mode {mode!r}; choose one of {', '.join(INSTRUCTION_MODES)}")


def prompt_instruction(mode: str, grammar: ComposedGrammar, image_size: ImageSize | None = None) -> str | None:
    """The system instruction for ``mode`` (see :data:`INSTRUCTION_MODES`); ``None`` for no system message."""
    check_instruction_mode(mode)
    return grounding_instruction(grammar, image_size) if mode == "full" else None


def grounding_instruction(grammar: ComposedGrammar, image_size: ImageSize | None = None) -> str:
    """The system instruction describing the output format, with one example from the grammar."""
    frame = grammar.frame
    kinds = ", ".join(t.name for t in grammar.types)
    return (
        "Answer the question about the image. First reason step by step, grounding every object you "
        f"rely on ({kinds}) right after you mention it; then give only the final answer. "
        f"Coordinates are {frame.description or frame.name}. Use exactly this format:\n"
        f"{example_trace(grammar, image_size)}"
    )
