"""Grammar exports: each compiles in its peer, and the parser, the regex, llguidance and xgrammar agree.

Agreement is on accept/reject of whole texts. Where the parser rejects for a reason no
context-free export can carry (box ordering x1 < x2, molmo's point indices), the exports
may accept: those cases are checked as "parser-accepted implies export-accepted" only.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from peers import lark_accepts, llguidance_accepts, need, regex_accepts, xgrammar_accepts
from test_example_plugin import load_line_plugin

import groundkit as gk

DIALECTS = ["groundkit", "treevgr", "qwen2vl", "qwen-json", "molmo"]
FRAMES = ["rel-1000", "percent-100", "unit"]
# numbers written in each frame: (valid, invalid)
NUMBERS = {
    "rel-1000": (["0", "7", "212", "999", "1000"], ["1001", "012", "00", "5.5", "-1", "10000"]),
    "percent-100": (["0", "12.5", "99.99", "100", "100.0"], ["100.5", "101", "05", "1.234", "100.01"]),
    "unit": (["0", "0.5", "0.1234", "1", "1.0"], ["1.5", "0.12345", "2", "01", "1.0001"]),
}
NOT_CONTEXT_FREE = ("degenerate", "indices")  # reasons a grammar export cannot express


def grounding_text(grammar: gk.ComposedGrammar, type_name: str, values: list[str], label: str | None = "mug") -> str:
    syntax = grammar.syntax(type_name)
    return syntax.write(label if syntax.writes_label else None, values)


def arity(grammar: gk.ComposedGrammar, type_name: str) -> int:
    t = grammar.grounding_type(type_name)
    return t.arity or 2 * t.min_vertices


def valid_values(frame: str, n: int) -> list[str]:
    ok = {"rel-1000": ["100", "200", "900", "950"], "percent-100": ["10.5", "20", "90", "95.25"], "unit": ["0.1", "0.2", "0.9", "1"]}
    pool = ok[frame]
    return [pool[i % 4] if n == 4 else pool[i % 2 * 2 + (i // 2) % 2] for i in range(n)]


def handcrafted(grammar: gk.ComposedGrammar) -> list[str]:
    """Valid traces and their near misses: bad numbers, truncations, broken tags."""
    frame = grammar.frame.name
    good, bad = NUMBERS[frame]
    texts = ["<think></think><answer></answer>", "<think>just text</think><answer>2</answer>", "\n<think>x</think> <answer>y</answer>\n"]
    for t in grammar.type_names:
        n = arity(grammar, t)
        base = valid_values(frame, n)
        whole = f"<think>see {grounding_text(grammar, t, base)} here</think><answer>2</answer>"
        texts += [whole, whole.replace("mug", ""), whole[: len(whole) // 2], whole[:-1], whole + "x", whole.replace("</think>", "")]
        for number in good + bad:
            for k in (0, n - 1):
                values = list(base)
                values[k] = number
                texts.append(f"<think>{grounding_text(grammar, t, values)}</think><answer>1</answer>")
    return texts


def verdicts(grammar: gk.ComposedGrammar, text: str, peers: bool = True) -> dict[str, bool]:
    out = {"regex": regex_accepts(gk.export_regex(grammar), text)}
    if peers:
        out["llguidance"] = llguidance_accepts(gk.export_lark(grammar), text)
        out["xgrammar"] = xgrammar_accepts(gk.export_ebnf(grammar), text)
    return out


def check_agreement(grammar: gk.ComposedGrammar, text: str, peers: bool = True) -> None:
    expected, reason = lark_accepts(grammar, text)
    got = verdicts(grammar, text, peers)
    if not expected and any(r in reason for r in NOT_CONTEXT_FREE):
        return  # the exports may accept what only the value checks reject
    assert all(v == expected for v in got.values()), f"{text!r}: parser={expected} ({reason}) exports={got}"


# --- numbers ---------------------------------------------------------------------------------


@pytest.mark.parametrize("frame", FRAMES)
def test_bounded_numbers_follow_the_frame(frame):
    grammar = gk.get_grammar("groundkit", frame=frame, types=["point"])
    good, bad = NUMBERS[frame]
    for number in good + bad:
        text = f"<think><point>({number}, 0)</point></think><answer>1</answer>"
        assert regex_accepts(gk.export_regex(grammar), text) == (number in good), number
        assert lark_accepts(grammar, text)[0] == (number in good), number


def test_per_image_frames_need_an_image_size():
    grammar = gk.get_grammar("qwen-json", frame="abs-original")
    with pytest.raises(gk.PerImageBoundError, match="largest bound"):
        gk.export_regex(grammar)
    pattern = gk.export_regex(grammar, image_size=[gk.ImageSize(640, 480), gk.ImageSize(320, 200)])
    ok = '<think>{"point_2d": [640, 2]}</think><answer>1</answer>'
    assert regex_accepts(pattern, ok) and not regex_accepts(pattern, ok.replace("640", "641"))
    # y is bounded by the largest extent too: the documented limit of one batch-wide regex
    assert regex_accepts(pattern, ok.replace("2]", "600]"))
    assert regex_accepts(gk.export_regex(grammar, bounded=False), ok.replace("640", "64000"))


# --- compile in the peers ------------------------------------------------------------------------


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("frame", FRAMES)
def test_every_export_compiles_in_its_peer(dialect, frame):
    need("llguidance")
    need("xgrammar")
    import llguidance
    import xgrammar

    for types in [[t] for t in gk.supported_types(dialect)] + [None]:
        grammar = gk.get_grammar(dialect, frame=frame, types=types)
        is_error, messages = llguidance.LLMatcher.validate_grammar_with_warnings(gk.export_lark(grammar))
        assert not is_error and not messages, messages
        xgrammar.Grammar.from_ebnf(gk.export_ebnf(grammar))
        gk.export_regex(grammar)


# --- differential ---------------------------------------------------------------------------------


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("frame", FRAMES)
def test_parser_regex_and_peers_agree_on_handcrafted_texts(dialect, frame):
    peers = all(__import__("importlib").util.find_spec(p) for p in ("llguidance", "xgrammar"))
    grammar = gk.get_grammar(dialect, frame=frame)
    texts = handcrafted(grammar)
    assert sum(lark_accepts(grammar, t)[0] for t in texts) >= 5  # the set has valid texts, not only near misses
    for text in texts:
        check_agreement(grammar, text, peers)


PIECES = ["<think>", "</think>", "<answer>", "</answer>", "text ", "\n", "<", "{", '"', ", ", "(", ")", "[", "]", "mug"]
NUMBER_TEXT = st.sampled_from(sorted({n for good, bad in NUMBERS.values() for n in good + bad} | {"500", "1", "100"}))


@st.composite
def near_traces(draw, grammar: gk.ComposedGrammar) -> str:
    """Mostly-valid traces: groundings of the grammar's types with numbers drawn from valid and invalid ones."""
    parts = ["<think>"]
    for _ in range(draw(st.integers(0, 3))):
        parts.append(draw(st.sampled_from(["", "look ", "a\nb ", "x"])))
        t = draw(st.sampled_from(grammar.type_names))
        n = arity(grammar, t) + (2 * draw(st.integers(0, 1)) if grammar.grounding_type(t).arity is None else 0)
        values = draw(st.lists(NUMBER_TEXT, min_size=n, max_size=n))
        parts.append(grounding_text(grammar, t, values, draw(st.sampled_from([None, "mug", "red cup"]))))
    parts += ["</think>", draw(st.sampled_from(["<answer>2</answer>", "<answer></answer>", "<answer>2"]))]
    text = "".join(parts)
    if draw(st.booleans()):
        text = text[: draw(st.integers(0, len(text)))]
    if draw(st.integers(0, 4)) == 0:
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.sampled_from(PIECES)) + text[at:]
    return text


@pytest.mark.parametrize("dialect", DIALECTS)
def test_parser_regex_and_peers_agree_on_sampled_texts(dialect):
    need("llguidance")
    need("xgrammar")
    grammar = gk.get_grammar(dialect)

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(near_traces(grammar))
    def run(text):
        check_agreement(grammar, text)

    run()


def test_third_party_types_export_unchanged(fresh_registry):
    fresh_registry(("line", load_line_plugin()))
    grammar = gk.get_grammar("groundkit", types=["point", "line"])
    assert "line" in gk.export_lark(grammar) and "line ::=" in gk.export_ebnf(grammar)
    text = '<think>a <line label="rope">[(100, 500), (900, 500)]</line></think><answer>1</answer>'
    peers = all(__import__("importlib").util.find_spec(p) for p in ("llguidance", "xgrammar"))
    for t in [text, text.replace("900", "1001"), text.replace("900", "0900"), text[:40]]:
        check_agreement(grammar, t, peers)
    assert regex_accepts(gk.export_regex(grammar), text)
