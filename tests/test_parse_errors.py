"""Parse errors carry the right position, an excerpt with a caret, and what was expected."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import trace

import groundkit as gk
from groundkit.errors import line_column

DIALECTS = ["groundkit", "treevgr", "qwen2vl", "qwen-json", "molmo"]


def check_consistent(err: gk.ParseError, text: str) -> None:
    assert (err.line, err.column) == line_column(text, err.offset)
    caret_line = err.excerpt.splitlines()[-1]
    assert caret_line.strip() == "^"
    assert f"line {err.line}, column {err.column}" in str(err)


@pytest.mark.parametrize("dialect", DIALECTS)
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_every_proper_prefix_is_reported_as_truncated_at_its_end(dialect, data):
    text = gk.format_trace(data.draw(trace(dialect)), dialect)
    cut = data.draw(st.integers(0, len(text) - 1))
    with pytest.raises(gk.ParseError) as info:
        gk.parse(text[:cut], dialect)
    err = info.value
    assert err.truncated, (text[:cut], str(err))
    assert err.offset == cut
    check_consistent(err, text[:cut])
    assert gk.get_parser(dialect).is_valid_prefix(text[:cut])


@pytest.mark.parametrize("dialect", DIALECTS)
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_a_bad_tag_in_free_text_is_reported_exactly_there(dialect, data):
    t = data.draw(trace(dialect))
    text = gk.format_trace(t, dialect)
    free = [i for s in gk.parse(text, dialect).think if isinstance(s, gk.Text) for i in range(s.span[0], s.span[1] + 1)]
    if not free:
        free = [len("<think>")]
    pos = data.draw(st.sampled_from(free))
    bad = text[:pos] + "<@" + text[pos:]
    with pytest.raises(gk.ParseError) as info:
        gk.parse(bad, dialect)
    err = info.value
    assert err.offset == pos and not err.truncated
    check_consistent(err, bad)
    assert err.expected  # says what would have been fine


@pytest.mark.parametrize("dialect", DIALECTS)
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_a_stray_character_is_reported_at_or_before_it(dialect, data):
    text = gk.format_trace(data.draw(trace(dialect)), dialect)
    pos = data.draw(st.integers(0, len(text)))
    bad = text[:pos] + "\x00" + text[pos:]
    try:
        gk.parse(bad, dialect)
    except gk.ParseError as err:
        assert err.offset <= pos + 1
        check_consistent(err, bad)
    # inside free text a NUL is just text: parsing may succeed


def test_message_names_line_column_excerpt_and_expectations():
    text = '<think>one\ntwo <point label="mug">(212, 5x3)</point></think><answer>1</answer>'
    with pytest.raises(gk.ParseError) as info:
        gk.parse(text)
    err = info.value
    assert (err.line, err.column) == (2, 31)  # the "x"
    assert 'expected one of: ")</point>"' in str(err) or '")</point>"' in err.expected
    assert "^" in str(err)


def test_truncated_text_has_line_and_column():
    text = "<think>a\nb <box>[1, 2, 3"
    with pytest.raises(gk.ParseError) as info:
        gk.parse(text)
    assert info.value.truncated and (info.value.line, info.value.column) == (2, 16)


def test_value_errors_point_at_the_value():
    with pytest.raises(gk.ParseError, match="outside") as info:
        gk.parse("<think><point>(10, 1001)</point></think><answer>1</answer>")
    assert info.value.offset == len("<think><point>(10, ")
    with pytest.raises(gk.ParseError, match="degenerate box"):
        gk.parse("<think><box>[10, 10, 10, 20]</box></think><answer>1</answer>")
    with pytest.raises(gk.ParseError):
        gk.parse("<think><point>(010, 5)</point></think><answer>1</answer>")  # no leading zeros


def test_record_ids_are_named():
    with pytest.raises(gk.ParseError) as info:
        gk.parse("<think>")
    assert str(info.value.with_record("r7")).startswith("record r7, line 1, column 8")
