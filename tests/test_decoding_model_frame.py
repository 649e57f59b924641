"""Frames carry the model's own resize parameters: ``abs-resized`` asked without parameters
takes the loaded image processor's, explicit parameters that differ (or a model that does not
resize that way) warn, and generation bounds follow what the model actually sees."""

from __future__ import annotations

import warnings

import pytest
from PIL import Image

import groundkit as gk
from groundkit.backbones.generation import GenerationRequest, generate, resolve_format
from groundkit.frames import FrameWarning, ResizedPixelFrame, resize_params, resized_frame_spec


@pytest.fixture(scope="module")
def qwen2():
    return gk.load_model("tiny:qwen2-vl")


def test_the_helper_reads_the_image_processor_config(qwen2):
    ip = qwen2.processor.image_processor
    params = resize_params(ip)
    assert params == {"factor": ip.patch_size * ip.merge_size, "min_pixels": ip.size["shortest_edge"],
                      "max_pixels": ip.size["longest_edge"]}
    assert resized_frame_spec(ip) == gk.get_registry().backbone("qwen2.5-vl").native_frame(qwen2.processor)
    assert resize_params(gk.load_model("tiny:gemma3").processor.image_processor) is None  # fixed-size resize


def test_plain_abs_resized_takes_the_models_own_parameters(qwen2):
    with warnings.catch_warnings():
        warnings.simplefilter("error", FrameWarning)
        grammar = resolve_format(qwen2, "qwen2vl", "abs-resized", None)
    frame = grammar.frame
    assert isinstance(frame, ResizedPixelFrame)
    size = gk.ImageSize(1280, 960)
    want = qwen2.input_size(size)  # what the model sees
    assert frame.bounds(size) == (want.width, want.height)
    assert frame.bounds(size) != gk.get_grammar("qwen2vl", "abs-resized").frame.bounds(size)  # the defaults differ


def test_explicit_parameters_that_differ_from_the_model_warn(qwen2):
    with pytest.warns(FrameWarning, match="the model's image processor uses"):
        resolve_format(qwen2, "qwen2vl", "abs-resized:factor=28,min_pixels=3136,max_pixels=1003520", None)
    with warnings.catch_warnings():
        warnings.simplefilter("error", FrameWarning)
        resolve_format(qwen2, "qwen2vl", resized_frame_spec(qwen2.processor.image_processor), None)


def test_abs_resized_with_a_model_that_does_not_smart_resize_warns():
    with pytest.warns(FrameWarning, match="does not resize images with smart_resize"):
        resolve_format(gk.load_model("tiny:gemma3"), "groundkit", "abs-resized:factor=28", None)


def test_generation_in_abs_resized_writes_within_the_models_input_size(qwen2):
    image = Image.new("RGB", (1280, 960), (20, 90, 160))
    [result] = generate(qwen2, [GenerationRequest(image, "Where is the mug?", "r0")], dialect="qwen2vl",
                        frame="abs-resized", max_new_tokens=48, batch_size=1)
    assert result.trace is not None, result.error
    seen = qwen2.input_size(gk.ImageSize(1280, 960))
    frame = resolve_format(qwen2, "qwen2vl", "abs-resized", None).frame
    assert frame.bounds(gk.ImageSize(1280, 960)) == (seen.width, seen.height)
