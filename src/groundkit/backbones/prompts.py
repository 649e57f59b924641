"""Prompts generated from the grammar, so the instruction and the decoder never disagree."""

from __future__ import annotations

from groundkit.frames import ImageSize
from groundkit.interfaces.grounding import GroundingType
from groundkit.text.formatter import format_trace
from groundkit.text.grammar import ComposedGrammar
from groundkit.trace import Grounding, Text, Trace

EXAMPLE_GROUNDINGS = {
    "point": ("cup", (0.42, 0.37)),
    "box": ("plate", (0.2, 0.55, 0.48, 0.8)),
    "mask": ("leaf", (0.6, 0.2, 0.75, 0.3, 0.65, 0.45)),
}

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
    """A plausible grounding of ``gtype`` (known types get a typical one; others increasing values)."""
    if gtype.name in EXAMPLE_GROUNDINGS:
        label, coords = EXAMPLE_GROUNDINGS[gtype.name]
    else:
        n = gtype.arity or 2 * gtype.min_vertices
        label, coords = gtype.name, tuple(0.2 + 0.5 * i / max(1, n - 1) for i in range(n))
    return Grounding(gtype.name, coords, label)


def example_trace(grammar: ComposedGrammar, image_size: ImageSize | None = None) -> str:
    """One complete example in the grammar's dialect, frame and grounding types."""
    segments: list[Text | Grounding] = [Text("The question is about ")]
    for i, gtype in enumerate(grammar.types):
        g = example_grounding(gtype)
        segments += [Text(("" if i == 0 else ", and the ") + (g.label or gtype.name) + " "), g]
    segments.append(Text(". Looking at them I can answer."))
    return format_trace(Trace(tuple(segments), "2"), grammar.dialect.name, grammar.frame.name, image_size=image_size, lossy=True)


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
