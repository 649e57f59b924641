"""Coordinate frames: conversions round-trip, bounds, and smart_resize agrees with transformers."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import groundkit as gk
from groundkit.frames import parse_frame_spec

FRAMES = ["rel-1000", "percent-100", "unit", "abs-original", "abs-resized"]
SIZES = st.builds(gk.ImageSize, st.integers(1, 5000), st.integers(1, 5000)).filter(
    lambda s: max(s.width, s.height) / min(s.width, s.height) <= 200
)


def transformers_smart_resize():
    mod = pytest.importorskip("transformers.models.qwen2_vl.image_processing_pil_qwen2_vl")
    return mod.smart_resize


@pytest.mark.parametrize("factor,min_pixels,max_pixels", [(28, 56 * 56, 28 * 28 * 1280), (32, 64 * 64, 32 * 32 * 768), (28, 256 * 28 * 28, 1280 * 28 * 28)])
def test_smart_resize_matches_transformers_on_a_grid(factor, min_pixels, max_pixels):
    ref = transformers_smart_resize()
    sides = [1, 2, 13, 27, 28, 29, 55, 56, 100, 223, 224, 479, 480, 640, 1000, 1023, 1080, 1920, 2048, 3333, 4000, 8000]
    checked = 0
    for h, w in itertools.product(sides, sides):
        if max(h, w) / min(h, w) > 200:
            with pytest.raises(gk.FrameError, match="aspect ratio"):
                gk.smart_resize(h, w, factor, min_pixels, max_pixels)
            continue
        assert gk.smart_resize(h, w, factor, min_pixels, max_pixels) == ref(h, w, factor, min_pixels, max_pixels), (h, w)
        checked += 1
    assert checked > 400


@settings(max_examples=300, deadline=None)
@given(size=SIZES, factor=st.sampled_from([14, 28, 32]))
def test_smart_resize_matches_transformers_on_random_sizes(size, factor):
    ref = transformers_smart_resize()
    got = gk.smart_resize(size.height, size.width, factor, 56 * 56, 28 * 28 * 1280)
    assert got == ref(size.height, size.width, factor, 56 * 56, 28 * 28 * 1280)
    assert got[0] % factor == 0 and got[1] % factor == 0


@pytest.mark.parametrize("name", FRAMES)
@settings(max_examples=100, deadline=None)
@given(unit=st.floats(0, 1), size=SIZES)
def test_unit_to_frame_to_unit_is_within_half_a_quantum(name, unit, size):
    frame = gk.get_registry().frame(name)
    for axis in "xy":
        value = frame.from_unit(unit, axis, size)
        hi = frame.extent(axis, size)
        assert 0 <= value <= hi
        assert frame.check(value, axis, size) is None
        assert abs(frame.to_unit(value, axis, size) - unit) <= 0.5 * 10**-frame.decimals / hi + 1e-12


@pytest.mark.parametrize("name", FRAMES)
@settings(max_examples=100, deadline=None)
@given(data=st.data(), size=SIZES)
def test_written_value_to_unit_and_back_is_exact(name, data, size):
    frame = gk.get_registry().frame(name)
    hi = frame.extent("x", size)
    scale = 10**frame.decimals
    value = data.draw(st.integers(0, int(hi * scale))) / scale
    assert frame.from_unit(frame.to_unit(value, "x", size), "x", size) == pytest.approx(value, abs=1e-9)


def test_bounds_and_out_of_bounds_messages():
    reg = gk.get_registry()
    size = gk.ImageSize(640, 480)
    assert reg.frame("rel-1000").bounds() == (1000, 1000)
    assert reg.frame("abs-original").bounds(size) == (640, 480)
    assert reg.frame("abs-resized").bounds(size) == (644, 476)  # smart_resize(480, 640) = (476, 644)
    assert "outside [0, 1000]" in reg.frame("rel-1000").check(1001, "x")
    with pytest.raises(gk.FrameError, match="needs the"):
        reg.frame("abs-original").bounds()


def test_frame_parameters_for_other_processors():
    reg = gk.get_registry()
    qwen3 = reg.frame("abs-resized:factor=32,max_pixels=1000000")
    assert qwen3.factor == 32 and qwen3.max_pixels == 1000000
    assert qwen3.name == "abs-resized:factor=32,min_pixels=3136,max_pixels=1000000"  # the name resolves back to it
    assert reg.frame(qwen3.name) == qwen3
    assert parse_frame_spec("abs-resized:factor=32") == ("abs-resized", {"factor": 32})
    with pytest.raises(gk.FrameError):
        parse_frame_spec("abs-resized:factor")
    with pytest.raises(gk.UnknownNameError):
        reg.frame("rel-1000:factor=2")
    with pytest.raises(gk.UnknownNameError, match="known: abs-original"):
        reg.frame("rel-999")


def test_pixel_frames_need_an_image_size_to_parse():
    with pytest.raises(gk.FrameError, match="image size"):
        gk.parse('<think>{"point_2d": [5, 5]}</think><answer>1</answer>', "qwen-json", "abs-resized")
    t = gk.parse('<think>{"point_2d": [322, 238]}</think><answer>1</answer>', "qwen-json", "abs-resized", image_size=(640, 480))
    assert t.groundings[0].coords == pytest.approx((0.5, 0.5))


def test_image_size_parsing():
    assert gk.ImageSize.parse("640x480") == gk.ImageSize(640, 480)
    with pytest.raises(gk.FrameError):
        gk.ImageSize.parse("640*480")
    with pytest.raises(gk.FrameError):
        gk.ImageSize(0, 5)
