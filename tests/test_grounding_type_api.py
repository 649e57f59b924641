"""The grounding-type API (issue 15 items 3-4): ``from_mask`` (synth outputs any type that has
it), declared ``fields`` in error messages, per-field ``minimums``, and ``example()`` in prompts."""

from __future__ import annotations

import json
import re
import types
from dataclasses import dataclass

import numpy as np
import pytest
from conftest import REPO
from hypothesis import given, settings
from hypothesis import strategies as st

import groundkit as gk
from groundkit.backbones.prompts import example_grounding, grounding_instruction
from groundkit.scenes import generate_scenes
from groundkit.synth import config_from_dict


def write_ellipse(label, v):
    attr = f' label="{label}"' if label is not None else ""
    return f"<ellipse{attr}>({v[0]}, {v[1]}, {v[2]}, {v[3]})</ellipse>"


ELLIPSE_RULE = 'ellipse: "<ellipse" (" label=\\"" LABEL? "\\"")? ">(" NUM _SEP NUM _SEP NUM _SEP NUM ")</ellipse>"'


class Ellipse(gk.GroundingType):
    """A third-party type: centre and radii, radii at least 0.5% of the image side."""

    name = "ellipse"
    arity = 4
    fields = ("cx", "cy", "rx", "ry")
    minimums = {2: 0.005, 3: 0.005}

    def __init__(self):
        super().__init__({"groundkit": gk.Syntax(ELLIPSE_RULE, write_ellipse)})

    def from_mask(self, mask, scale=1.0):
        ys, xs = np.nonzero(mask)
        if not len(xs):
            return None
        h, w = mask.shape
        rx, ry = (max(2 * xs.std(), 0.5) * scale / w, max(2 * ys.std(), 0.5) * scale / h)
        return ((xs.mean() + 0.5) / w, (ys.mean() + 0.5) / h, max(rx, 0.005), max(ry, 0.005))

    def example(self):
        return gk.Grounding("ellipse", (0.5, 0.4, 0.12, 0.08), "plate")


SEGMENT_RULE = 'segment: "<segment>(" NUM _SEP NUM _SEP NUM _SEP NUM ")</segment>"'


class Segment(gk.GroundingType):
    """No from_mask, no example; named fields with an ordering (bx > ax)."""

    name = "segment"
    arity = 4
    fields = ("ax", "ay", "bx", "by")
    ordering = ((2, 0),)

    def __init__(self):
        super().__init__({"groundkit": gk.Syntax(SEGMENT_RULE, lambda label, v: f"<segment>({', '.join(v)})</segment>")})


def plugin(*objects):
    return types.SimpleNamespace(register_grounding_types=gk.hookimpl(lambda register: [register(o) for o in objects]))


@pytest.fixture
def ellipse(fresh_registry):
    return fresh_registry(("shapes", plugin(Ellipse(), Segment())))


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    root = tmp_path_factory.mktemp("scenes")
    generate_scenes(root, 8, seed=5, size="tiny")
    return root / "scenes.jsonl"


def synth_config(scenes, out, **output):
    return config_from_dict({"input": str(scenes), "out": str(out), "batch_size": 4, "teacher": {"simulate": {"wrong": 0.0}},
                             "grounder": "oracle", "output": output})


def rows(path):
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


# --- item 3: from_mask ------------------------------------------------------------------------
def test_synth_outputs_a_third_party_type_through_from_mask(ellipse, scenes, tmp_path):
    summary = gk.run_synth(synth_config(scenes, tmp_path, grounding="ellipse", grounding_params={"scale": 1.0}))
    kept = rows(tmp_path / "data.jsonl")
    assert kept and summary.kept == len(kept) and set(summary.grounding_types) == {"ellipse"}
    for r in kept:
        trace = gk.parse(r["completion"], image_size=(r["width"], r["height"]))
        assert trace.groundings and {g.type for g in trace.groundings} == {"ellipse"}
        for g, obj in zip(trace.groundings, gk.GroundTruth.from_dict(r).objects):
            cx, cy, rx, ry = g.coords
            x1, y1, x2, y2 = obj.box
            assert x1 <= cx <= x2 and y1 <= cy <= y2 and rx >= 0.005 and ry >= 0.005


def test_builtin_types_build_from_a_mask_with_the_derive_functions():
    mask = np.zeros((20, 30), bool)
    mask[4:12, 6:21] = True
    reg = gk.get_registry()
    assert reg.grounding_type("point").from_mask(mask) == gk.mask_interior_point(mask)
    assert reg.grounding_type("box").from_mask(mask) == gk.mask_box(mask) == (0.2, 0.2, 0.7, 0.6)
    assert reg.grounding_type("mask").from_mask(mask, max_vertices=4) == gk.mask_polygon(mask, 4)
    empty = np.zeros((5, 5), bool)
    assert all(reg.grounding_type(n).from_mask(empty) is None for n in ("point", "box", "mask"))


def test_grounding_without_from_mask_or_unknown_is_a_config_error_listing_the_working_types(ellipse, scenes, tmp_path):
    with pytest.raises(gk.ConfigError, match=r"'output.grounding'.*'segment' cannot be built from a mask.*auto, box, ellipse, mask, point"):
        synth_config(scenes, tmp_path, grounding="segment")
    with pytest.raises(gk.ConfigError, match=r"'output.grounding'.*unknown grounding type 'polygon'.*auto, box, ellipse, mask, point"):
        synth_config(scenes, tmp_path, grounding="polygon")


def test_unknown_from_mask_parameter_is_a_config_error_naming_the_key(ellipse, scenes, tmp_path):
    with pytest.raises(gk.ConfigError, match=r"'output.grounding_params.scal'.*parameters: scale"):
        synth_config(scenes, tmp_path, grounding="ellipse", grounding_params={"scal": 2})
    with pytest.raises(gk.ConfigError, match=r"'output.grounding_params.simplify'.*parameters: max_vertices"):
        synth_config(scenes, tmp_path, grounding="mask", grounding_params={"simplify": 2})


def test_a_type_the_output_dialect_cannot_write_is_a_config_error(scenes, tmp_path):
    with pytest.raises(gk.ConfigError, match=r"'output.grounding'.*dialect 'treevgr' cannot write 'mask'"):
        gk.run_synth(synth_config(scenes, tmp_path, grounding="mask", dialect="treevgr"))


def test_a_mask_the_type_cannot_use_drops_only_its_record(fresh_registry, scenes, tmp_path):
    class Picky(Ellipse):
        def from_mask(self, mask, scale=1.0):  # gives up on every other mask, returns junk for some
            n = int(mask.sum())
            return None if n % 2 else ((2.0, 0.5, 0.1, 0.1) if n % 4 == 0 else super().from_mask(mask))

    fresh_registry(("picky", plugin(Picky())))
    gk.run_synth(synth_config(scenes, tmp_path, grounding="ellipse"))
    kept, dropped = rows(tmp_path / "data.jsonl"), rows(tmp_path / "dropped.jsonl")
    assert len(kept) + len(dropped) == 8
    reasons = [d["detail"] for d in dropped if d["reason"] == "align_failed"]
    assert reasons and all("gives no ellipse" in d or "not unit coordinates" in d for d in reasons)


# --- item 4: fields and minimums --------------------------------------------------------------
def test_parse_errors_name_the_declared_fields(ellipse):
    text = "<think>a <ellipse>(500, 400, 1200, 30)</ellipse></think><answer>1</answer>"
    with pytest.raises(gk.ParseError, match=r"rx=1200 is outside \[0, 1000\]") as err:
        gk.parse(text)
    assert (err.value.line, err.value.column) == (1, text.index("1200") + 1)  # the caret points at rx
    with pytest.raises(gk.ParseError, match=r"degenerate segment: bx=100 must be greater than ax=200"):
        gk.parse("<think><segment>(200, 10, 100, 20)</segment></think><answer>1</answer>")
    with pytest.raises(gk.ParseError, match=r"ry=900 is outside \[0, 200\]"):  # a per-image frame names it too
        gk.parse("<think><ellipse>(50, 40, 30, 900)</ellipse></think><answer>1</answer>", frame="abs-original", image_size=(300, 200))
    with pytest.raises(gk.FormatError, match=r"degenerate segment: bx=0.1 must be greater than ax=0.2"):
        gk.format_trace(gk.Trace((gk.Grounding("segment", (0.2, 0.1, 0.1, 0.2)),), "1"))
    assert gk.get_registry().grounding_type("box").value_names(4) == ["x1", "y1", "x2", "y2"]


def test_a_value_below_its_minimum_is_a_typed_error_naming_the_field(ellipse):
    text = "<think>a\n<ellipse>(500, 400, 120, 4)</ellipse></think><answer>1</answer>"
    with pytest.raises(gk.ParseError, match=r"ellipse ry=4 is below its minimum: ry must be at least 0.005 of the image height") as err:
        gk.parse(text)
    assert (err.value.line, err.value.column) == (2, len("<ellipse>(500, 400, 120, ") + 1)
    lenient = gk.parse(text, lenient=True)
    assert not lenient.groundings and "ry=4 is below its minimum" in lenient.problems[0].reason
    assert gk.parse(text.replace(", 4)", ", 5)")).groundings[0].coords[3] == 0.005
    with pytest.raises(gk.FormatError, match="ellipse rx=0.004 is below its minimum"):
        gk.format_trace(gk.Trace((gk.Grounding("ellipse", (0.5, 0.5, 0.004, 0.1)),), "1"))


def test_formatter_rounds_a_value_up_to_its_minimum_so_the_text_parses_back(ellipse):
    # 0.0055 of 250 px is 1.375 px, which rounds to 1 px = 0.004 < 0.005: written as 2 px instead
    trace = gk.Trace((gk.Grounding("ellipse", (0.5, 0.5, 0.0055, 0.1), "dot"),), "1")
    text = gk.format_trace(trace, frame="abs-original", image_size=(250, 200))
    assert '<ellipse label="dot">(125, 100, 2, 20)</ellipse>' in text
    assert gk.parse(text, frame="abs-original", image_size=(250, 200)).groundings[0].coords[2] == 2 / 250


def test_contradictory_declaration_fails_when_the_class_is_defined():
    with pytest.raises(gk.PluginError, match=r"'bad': fields must be 4 distinct names"):
        type("Bad", (gk.GroundingType,), {"name": "bad", "arity": 4, "fields": ("a", "b")})
    with pytest.raises(gk.PluginError, match=r"minimums index 4 is not a value index \(0..3\)"):
        type("Bad", (gk.GroundingType,), {"name": "bad", "arity": 4, "minimums": {4: 0.1}})
    with pytest.raises(gk.PluginError, match=r"minimums\[0\] must be a unit value"):
        type("Bad", (gk.GroundingType,), {"name": "bad", "arity": 2, "minimums": {0: 5}})


# --- item 4: example() ------------------------------------------------------------------------
def test_prompt_uses_the_types_example(ellipse):
    prompt = grounding_instruction(gk.get_grammar("groundkit", types=["point", "ellipse", "segment"]))
    assert '<ellipse label="plate">(500, 400, 120, 80)</ellipse>' in prompt
    assert '<point label="cup">(420, 370)</point>' in prompt
    assert "<segment>(200, 367, 533, 700)</segment>" in prompt  # no example(): values spread over the image


def test_an_invalid_example_is_a_plugin_error_naming_the_type():
    class Tiny(Ellipse):
        def example(self):
            return gk.Grounding("ellipse", (0.5, 0.5, 0.001, 0.1), "dot")

    class Other(Ellipse):
        def example(self):
            return gk.Grounding("point", (0.5, 0.5), "dot")

    with pytest.raises(gk.PluginError, match="'ellipse': example.. is not a valid grounding: ellipse rx=0.001 is below"):
        example_grounding(Tiny())
    with pytest.raises(gk.PluginError, match="must return a Grounding of type 'ellipse'"):
        example_grounding(Other())


# --- docs -------------------------------------------------------------------------------------
def test_the_documented_ellipse_example_registers_parses_and_builds_from_a_mask(fresh_registry):
    docs = (REPO / "docs" / "plugins.md").read_text()
    for word in ("fields", "minimums", "from_mask", "example()", "output.grounding_params"):
        assert word in docs, f"docs/plugins.md does not describe {word}"
    block = re.search(r"<!-- ellipse-example -->\s*```python\n(.*?)```", docs, re.S).group(1)
    namespace: dict = {}
    exec(compile(block, "docs/plugins.md", "exec"), namespace)
    fresh_registry(("ellipse-doc", types.SimpleNamespace(register_grounding_types=namespace["register_grounding_types"])))
    gtype = gk.get_registry().grounding_type("ellipse")
    mask = np.zeros((100, 100), bool)
    mask[20:40, 10:70] = True
    cx, cy, rx, ry = gtype.from_mask(mask)
    assert (cx, cy) == pytest.approx((0.4, 0.3), abs=0.01) and rx > ry >= 0.005
    assert example_grounding(gtype).label
    with pytest.raises(gk.ParseError, match="rx=1 is below its minimum"):
        gk.parse("<think><ellipse>(500, 500, 1, 100)</ellipse></think><answer>1</answer>")


def test_the_line_example_package_builds_from_a_mask_and_gives_an_example(fresh_registry):
    from test_example_plugin import load_line_plugin

    fresh_registry(("line", load_line_plugin()))
    line = gk.get_registry().grounding_type("line")
    mask = np.zeros((50, 100), bool)
    mask[24:26, 10:90] = True  # a horizontal bar: its principal axis runs from x=0.1 to x=0.9
    x1, y1, x2, y2 = line.from_mask(mask)
    assert sorted((x1, x2)) == pytest.approx([0.105, 0.895], abs=1e-6) and y1 == pytest.approx(0.5) == y2
    assert '<line label="rope">[(150, 700), (850, 620)]</line>' in grounding_instruction(gk.get_grammar("groundkit", types=["line"]))
    with pytest.raises(gk.ParseError, match=r"x2=1001 is outside"):
        gk.parse("<think><line>[(1, 2), (1001, 4)]</line></think><answer>1</answer>")


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(3, 24), st.integers(3, 24))
def test_builtin_from_mask_values_are_valid_groundings_that_round_trip(seed, h, w):
    rng = np.random.default_rng(seed)
    mask = rng.random((h, w)) < rng.uniform(0.05, 0.9)
    mask[rng.integers(h), rng.integers(w)] = True
    reg = gk.get_registry()
    for name in ("point", "box", "mask"):
        gtype = reg.grounding_type(name)
        coords = gtype.from_mask(mask)
        assert gtype.check_values(coords) is None and all(0.0 <= c <= 1.0 for c in coords)
        text = gk.format_trace(gk.Trace((gk.Grounding(name, coords, "thing"),), "1"), frame="unit")
        assert gk.parse(text, frame="unit").groundings[0].type == name


def test_a_plugin_frame_with_its_own_check_still_works_with_named_fields(fresh_registry):
    @dataclass(frozen=True)
    class Strict(gk.Frame):  # overrides check with the old signature (no field name)
        def check(self, value, axis, size=None):
            return f"{axis} value {value:g} is odd" if value % 2 else None

        def to_unit(self, value, axis, size=None):
            return value / self.scale

    frames = types.SimpleNamespace(register_frames=gk.hookimpl(lambda register: register(Strict("even-1000"))))
    fresh_registry(("even", frames))
    assert gk.parse("<think><point>(2, 4)</point></think><answer>1</answer>", frame="even-1000").groundings[0].coords == (0.002, 0.004)
    with pytest.raises(gk.ParseError, match="y value 3 is odd"):
        gk.parse("<think><point>(2, 3)</point></think><answer>1</answer>", frame="even-1000")
