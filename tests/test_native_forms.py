"""Dialects read what native models write (strict grammar): Qwen2.5-VL / Qwen3-VL JSON and
Molmo points; constrained decoding and the exports keep the one canonical form."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import groundkit as gk

QWEN_FENCED = (
    "<think>The objects:\n```json\n[\n\t{\"bbox_2d\": [300, 420, 520, 610], \"label\": \"plate\"},\n"
    "\t{\"bbox_2d\": [10, 20, 30, 40], \"label\": \"cup\"}\n]\n```\nSo B.</think><answer>B</answer>"
)


def read(text: str, dialect: str = "qwen-json") -> list[tuple]:
    return [(g.type, g.raw, g.label) for g in gk.parse(text, dialect).groundings]


def test_qwen_json_reads_a_fenced_indented_list_strictly():
    assert read(QWEN_FENCED) == [("box", (300, 420, 520, 610), "plate"), ("box", (10, 20, 30, 40), "cup")]
    one = '<think>```json\n{"point_2d": [5, 6], "label": "dot"}\n```</think><answer>1</answer>'
    assert read(one) == [("point", (5, 6), "dot")]


def test_qwen_json_reads_either_key_order_any_whitespace_and_escapes():
    text = '<think>{\n  "label": "caf\\u00e9 \\"big\\" cup",\n  "bbox_2d" : [ 1 ,2,\n 3 , 4 ]\n}</think><answer>1</answer>'
    assert read(text) == [("box", (1, 2, 3, 4), 'café "big" cup')]
    assert read('<think>{"label": "a", "point_2d": [7,8]}</think><answer>1</answer>') == [("point", (7, 8), "a")]


def test_qwen_json_reads_decimal_numbers_within_the_frame():
    assert read('<think>{"bbox_2d": [300.0, 420.5, 520, 610]}</think><answer>1</answer>') == [("box", (300, 420.5, 520, 610), None)]
    with pytest.raises(gk.ParseError, match="outside"):
        gk.parse('<think>{"point_2d": [1000.5, 2]}</think><answer>1</answer>', "qwen-json")


def test_qwen_json_ignores_extra_keys_with_simple_values_after_the_coordinates():
    text = '<think>{"bbox_2d": [1, 2, 3, 4], "label": "x", "score": 0.93, "id": "a7", "ok": true, "note": null}</think><answer>1</answer>'
    assert read(text) == [("box", (1, 2, 3, 4), "x")]
    for bad in ('{"bbox_2d": [1, 2, 3, 4], "score": {"nested": 1}}', '{"score": 0.9, "bbox_2d": [1, 2, 3, 4]}'):
        with pytest.raises(gk.ParseError):
            gk.parse(f"<think>{bad}</think><answer>1</answer>", "qwen-json")


@settings(max_examples=60, deadline=None)
@given(
    boxes=st.lists(st.tuples(st.integers(0, 499), st.integers(0, 499), st.integers(1, 500), st.integers(1, 500)), min_size=1, max_size=4),
    label=st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters='<>{}\n'), min_size=1, max_size=12),
    indent=st.sampled_from([None, 0, 2, "\t"]),
    label_first=st.booleans(),
)
def test_json_dumps_output_of_any_shape_is_read(boxes, label, indent, label_first):
    objs = []
    for x1, y1, w, h in boxes:
        coords = [x1, y1, x1 + w, y1 + h]
        objs.append({"label": label, "bbox_2d": coords} if label_first else {"bbox_2d": coords, "label": label})
    text = "<think>```json\n" + json.dumps(objs, indent=indent) + "\n```</think><answer>1</answer>"
    if label.strip() == "":
        return
    got = read(text)
    assert [g[1] for g in got] == [(x1, y1, x1 + w, y1 + h) for x1, y1, w, h in boxes]
    assert all(g[2] == label for g in got)


def test_decoding_and_exports_keep_the_canonical_form():
    grammar = gk.get_grammar("qwen-json")
    assert "_JWS" not in grammar.text.split("// ---- grounding types")[1]  # the decoder's rules are canonical
    assert "_JWS" in grammar.for_reading().text.split("// ---- grounding types")[1]
    canonical = gk.TraceParser(grammar, native=False)
    with pytest.raises(gk.ParseError):
        canonical.parse(QWEN_FENCED.replace('{"bbox_2d": [300', '{ "bbox_2d": [300'))
    pattern = gk.export_regex(grammar)
    import regex

    assert regex.fullmatch(pattern, '<think>{"bbox_2d": [1, 2, 3, 4], "label": "x"}</think><answer>1</answer>', regex.DOTALL)
    assert not regex.fullmatch(pattern, '<think>{"label": "x", "bbox_2d": [1, 2, 3, 4]}</think><answer>1</answer>', regex.DOTALL)
    written = gk.format_trace(gk.parse(QWEN_FENCED, "qwen-json"), "qwen-json")
    assert '{"bbox_2d": [300, 420, 520, 610], "label": "plate"}' in written


def test_grammar_command_prints_the_reading_grammar_on_request():
    from typer.testing import CliRunner

    from groundkit.cli import app

    runner = CliRunner()
    assert "_JEXTRA" not in runner.invoke(app, ["grammar", "-d", "qwen-json"]).stdout.split("// ---- grounding types")[1]
    assert "_JEXTRA" in runner.invoke(app, ["grammar", "-d", "qwen-json", "--reading"]).stdout.split("// ---- grounding types")[1]


# --- molmo -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('<point x="12.345" y="45.6" alt="mug">mug</point>', [(12.345, 45.6)]),  # three decimals
        ('<point x=" 12.3" y=" 45.6" alt="mug">mug</point>', [(12.3, 45.6)]),  # a leading space inside the quotes
        ('<point alt="mug" x="12.3" y="45.6">mug</point>', [(12.3, 45.6)]),  # alt before the coordinates
        ('<points alt="mugs" x1="1.5" y1="2" x2="3.125" y2="4">mugs</points>', [(1.5, 2), (3.125, 4)]),
    ],
)
def test_molmo_reads_what_molmo_point_extraction_accepts(text, expected):
    t = gk.parse(f"<think>{text}</think><answer>1</answer>", "molmo")
    assert [g.raw for g in t.groundings] == expected and t.groundings[0].label.startswith("mug")
    assert gk.parse(text, "molmo", lenient=True).groundings[0].raw == expected[0]


def test_molmo_out_of_range_values_are_still_rejected():
    with pytest.raises(gk.ParseError, match="outside"):
        gk.parse('<think><point x="100.5" y="4" alt="m">m</point></think><answer>1</answer>', "molmo")
