"""Generation with a backbone: prompts from the grammar, batching, constrained decoding, parsing.

Coordinates always come back in the canonical frame of the *original* image: each row is
parsed with its own frame context (the original size; pixel frames apply the backbone's
resize rule).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from groundkit.backbones.prompts import check_instruction_mode, prompt_instruction
from groundkit.errors import GroundkitError, ParseError
from groundkit.frames import FrameWarning, ImageSize, ResizedPixelFrame, resize_params, resized_frame_spec
from groundkit.images import open_rgb
from groundkit.interfaces.backbone import LoadedModel
from groundkit.text.grammar import ComposedGrammar, get_grammar
from groundkit.text.parser import TraceParser
from groundkit.trace import Trace


@dataclass
class GenerationRequest:
    """One image + question (``image`` is a PIL image or a path)."""

    image: Any
    question: str
    id: str | None = None


@dataclass
class SamplingConfig:
    """Greedy by default; ``do_sample`` with temperature / top-k / top-p otherwise."""

    do_sample: bool = False
    temperature: float = 1.0
    top_k: int | None = None
    top_p: float | None = None
    seed: int | None = None

    def generate_kwargs(self) -> dict[str, Any]:
        if not self.do_sample:
            return {"do_sample": False}
        kw: dict[str, Any] = {"do_sample": True, "temperature": self.temperature}
        if self.top_k is not None:
            kw["top_k"] = self.top_k
        if self.top_p is not None:
            kw["top_p"] = self.top_p
        return kw


@dataclass
class GenerationResult:
    """The text a model wrote for a request, its parsed trace (or the parse error) and the image size."""

    id: str | None
    question: str
    text: str
    image_size: ImageSize
    trace: Trace | None = None
    error: str | None = None
    token_ids: list[int] = field(default_factory=list, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "question": self.question, "completion": self.text,
            "width": self.image_size.width, "height": self.image_size.height,
            "trace": self.trace.to_dict() if self.trace else None, "error": self.error,
        }


def resolve_format(loaded: LoadedModel, dialect: str | None, frame: str | None, types: Sequence[str] | None) -> ComposedGrammar:
    """The grammar to generate: the backbone's native dialect/frame unless others are requested.

    A resized-pixel frame named without parameters (``abs-resized``) takes the model's own
    resize settings (read from its image processor); one whose explicit parameters differ
    from the model's, or one used with a model that does not resize that way, warns."""
    dialect = dialect or loaded.backbone.native_dialect
    if frame is None and dialect == loaded.backbone.native_dialect:
        frame = loaded.native_frame()
    grammar = get_grammar(dialect, frame, types)
    if not isinstance(grammar.frame, ResizedPixelFrame):
        return grammar
    own = resized_frame_spec(getattr(loaded.processor, "image_processor", None))
    if own is not None and (frame is None or ":" not in frame):
        return get_grammar(dialect, own, types)  # the model's parameters, not the defaults
    check_resize_frame(loaded, grammar.frame)
    return grammar


def check_resize_frame(loaded: LoadedModel, frame: ResizedPixelFrame) -> None:
    """Warn when ``frame``'s resize parameters are not what ``loaded``'s image processor does."""
    own = resize_params(getattr(loaded.processor, "image_processor", None))
    mine = {"factor": frame.factor, "min_pixels": frame.min_pixels, "max_pixels": frame.max_pixels}
    if own is None:
        warnings.warn(f"frame {frame.name}: backbone {loaded.backbone.name} does not resize images with smart_resize, so "
                      "its pixel values will not match the image the model sees", FrameWarning, stacklevel=3)
    elif own != mine:
        warnings.warn(f"frame {frame.name} has resize parameters {mine}, but the model's image processor uses {own}: bounds "
                      f"and coordinates will not match the image the model sees (use plain 'abs-resized')",
                      FrameWarning, stacklevel=3)


def open_image(image: Any, rid: str | None) -> Image.Image:
    return open_rgb(image, rid)


def constraint_processor(loaded: LoadedModel, grammar: ComposedGrammar, sizes: list[ImageSize], max_new_tokens: int) -> Any:
    """The grounded logits processor for one batch (per-row frames), from the decoding backend."""
    try:
        from groundkit.decoding import grounded_logits_processor
    except ImportError as exc:  # pragma: no cover - the engine ships with groundkit
        raise GroundkitError("constrained decoding needs groundkit.decoding, which failed to import") from exc
    return grounded_logits_processor(loaded.tokenizer, grammar, image_sizes=sizes, max_new_tokens=max_new_tokens)


def batches(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def model_eos(loaded: LoadedModel) -> list[int]:
    stop = loaded.model.generation_config.eos_token_id
    return [int(s) for s in (stop if isinstance(stop, list) else [stop]) if s is not None]


def decode_new_tokens(loaded: LoadedModel, ids: Any, extra_stops: Sequence[int] = ()) -> tuple[str, list[int]]:
    """Text of generated ids up to the first EOS/pad, keeping special tokens the dialect may use."""
    stops = set(model_eos(loaded)) | {loaded.tokenizer.pad_token_id} | set(extra_stops)
    out: list[int] = []
    for t in ids.tolist():
        if t in stops:
            break
        out.append(t)
    return loaded.tokenizer.decode(out, skip_special_tokens=False, clean_up_tokenization_spaces=False), out


def generation_kwargs(loaded: LoadedModel, processor: Any, max_new_tokens: int) -> dict[str, Any]:
    """What ``model.generate`` needs besides sampling: the processor's own ``generate_kwargs()``
    (one source of truth for budget, EOS and padding) or, for a third-party backend's plain
    processor or no processor, the same assembled here."""
    if processor is not None and callable(getattr(processor, "generate_kwargs", None)):
        return processor.generate_kwargs()
    from transformers import LogitsProcessorList

    kwargs: dict[str, Any] = {"max_new_tokens": max_new_tokens}
    if processor is not None:
        kwargs["logits_processor"] = LogitsProcessorList([processor])
        ends = getattr(processor, "eos_token_ids", None)
        if ends:  # stop on every token the grammar treats as the end
            kwargs["eos_token_id"] = sorted(set(ends) | set(model_eos(loaded)))
    return kwargs


def batch_completions(loaded: LoadedModel, processor: Any, out: Any, prompt_length: int,
                      stops: Sequence[int]) -> list[tuple[str, list[int]]]:
    """(text, ids) per row: through the processor's ``completions`` (prompt stripped, cut at
    the first EOS, lost rows reported) when it has one, else cut at EOS / padding here."""
    if processor is not None and callable(getattr(processor, "completions", None)):
        tok = loaded.tokenizer
        return [(tok.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False), ids)
                for ids in processor.completions(out)]
    return [decode_new_tokens(loaded, ids, stops) for ids in out[:, prompt_length:]]


def generate(
    loaded: LoadedModel,
    requests: Sequence[GenerationRequest],
    dialect: str | None = None,
    frame: str | None = None,
    types: Sequence[str] | None = None,
    constrained: bool = True,
    max_new_tokens: int = 256,
    sampling: SamplingConfig | None = None,
    batch_size: int = 8,
    on_batch: Callable[[list[GenerationResult]], None] | None = None,
    instruction: str = "full",
) -> list[GenerationResult]:
    """Generate for every request (batched), parse each completion, return results in order.
    ``instruction``: the system message the model was trained with (``full`` or ``none``)."""
    import torch

    sampling = sampling or SamplingConfig()
    grammar = resolve_format(loaded, dialect, frame, types)
    check_instruction_mode(instruction)  # an unknown mode fails before any work
    parser = TraceParser(grammar)
    if sampling.seed is not None:
        torch.manual_seed(sampling.seed)
    device = next(loaded.model.parameters()).device
    results: list[GenerationResult] = []
    for batch in batches(list(requests), batch_size):
        images = [open_image(r.image, r.id) for r in batch]
        sizes = [ImageSize(*img.size) for img in images]
        prompts = [
            loaded.backbone.prompt(loaded.processor, r.question, prompt_instruction(instruction, grammar, size))
            for r, size in zip(batch, sizes)
        ]
        inputs = loaded.backbone.processor_inputs(loaded.processor, prompts, images).to(device)
        kwargs = sampling.generate_kwargs()
        processor = constraint_processor(loaded, grammar, sizes, max_new_tokens) if constrained else None
        kwargs.update(generation_kwargs(loaded, processor, max_new_tokens))
        with torch.no_grad():
            out = loaded.model.generate(**inputs, **kwargs)
        completions = batch_completions(loaded, processor, out, inputs["input_ids"].shape[1], kwargs.get("eos_token_id", ()))
        batch_results = []
        for r, size, (text, token_ids) in zip(batch, sizes, completions):
            result = GenerationResult(r.id, r.question, text, size, token_ids=token_ids)
            try:
                result.trace = parser.parse(text, size)
            except ParseError as err:
                result.error = str(err.with_record(r.id) if r.id is not None else err)
            batch_results.append(result)
        results.extend(batch_results)
        if on_batch is not None:
            on_batch(batch_results)
    return results
