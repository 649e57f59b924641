"""Plugin checks at load (issue 13): every grounding type's rule is compiled in each dialect it
declares when the registry loads; a broken one is failed with its reason (``groundkit plugins``)
and only that type is unavailable, the dialect keeps working. Strict mode makes it an error."""

from __future__ import annotations

import json
import types

import pytest
from typer.testing import CliRunner

import groundkit as gk
from groundkit.cli import app

GOOD_RULE = 'star: "<star>(" NUM _SEP NUM ")</star>"'
TEXT = "<think>a <point>(1, 2)</point></think><answer>1</answer>"


def star_type(rules: dict[str, str]) -> gk.GroundingType:
    class Star(gk.GroundingType):
        name = "star"
        arity = 2

        def __init__(self):
            write = lambda label, v: f"<star>({v[0]}, {v[1]})</star>"  # noqa: E731
            super().__init__({d: gk.Syntax(rule, write, writes_label=False) for d, rule in rules.items()})

    return Star()


def star_plugin(rules: dict[str, str] | gk.GroundingType) -> object:
    star = star_type(rules) if isinstance(rules, dict) else rules
    return types.SimpleNamespace(register_grounding_types=gk.hookimpl(lambda register: register(star)))


@pytest.mark.parametrize("rule", [
    'star: "<star>(" NUM _SEP ( ")</star>"',  # a Lark syntax error (unbalanced parenthesis)
    'star: "<star>(" NUMBER ")</star>"',  # an undefined terminal
    'star: "<star>(" star_inner ")</star>"',  # an undefined rule
    "star: 42",  # not a rule Lark can read
])
def test_a_grounding_type_whose_rule_does_not_compile_is_failed_and_its_dialect_keeps_working(fresh_registry, rule):
    reg = fresh_registry(("stars", star_plugin({"groundkit": rule})))
    assert [f.name for f in reg.failures] == ["stars"]
    assert "grounding type 'star' of plugin 'stars'" in reg.failures[0].error and "dialect 'groundkit'" in reg.failures[0].error
    assert "star" not in gk.supported_types("groundkit")
    assert gk.parse(TEXT).groundings[0].type == "point"  # the dialect works with its other types
    with pytest.raises(gk.PluginError, match="grounding type 'star' is unavailable: its rule \\(plugin 'stars'\\)"):
        gk.get_grammar("groundkit", types=["star"])


def test_a_type_broken_in_one_dialect_stays_available_in_the_others(fresh_registry):
    star = star_type({"groundkit": GOOD_RULE, "treevgr": 'star: "<star>" UNDEFINED'})
    reg = fresh_registry(("stars", star_plugin(star)))
    assert "star" in gk.supported_types("groundkit") and "star" not in gk.supported_types("treevgr")
    assert gk.parse("<think><star>(3, 4)</star></think><answer>1</answer>").groundings[0].type == "star"
    assert gk.parse("<think>x <box>[1, 2, 3, 4]</box></think><answer>1</answer>", "treevgr").groundings
    assert "dialect 'treevgr'" in reg.failures[0].error
    assert set(star.syntaxes) == {"groundkit", "treevgr"}  # the plugin's own object is untouched (the registry holds a copy)


def test_a_rule_that_compiles_alone_but_clashes_with_the_built_in_types_is_the_one_taken_out(fresh_registry):
    clash = 'star: "<point" (" label=\\"" LABEL? "\\"")? ">(" NUM _SEP NUM ")</point>"'  # the built-in point's text: a conflict
    reg = fresh_registry(("stars", star_plugin({"groundkit": clash})))
    assert [f.name for f in reg.failures] == ["stars"]
    assert gk.parse(TEXT).groundings[0].type == "point" and "star" not in gk.supported_types("groundkit")


def test_good_types_pass_the_load_check_without_failures(fresh_registry):
    reg = fresh_registry(("stars", star_plugin({"groundkit": GOOD_RULE})))
    assert reg.failures == [] and "star" in gk.supported_types("groundkit")


def test_strict_mode_makes_a_broken_rule_an_error(fresh_registry, monkeypatch):
    monkeypatch.setenv("GROUNDKIT_STRICT_PLUGINS", "1")
    with pytest.raises(gk.PluginError, match="grounding type 'star' of plugin 'stars'.*does not compile"):
        fresh_registry(("stars", star_plugin({"groundkit": "star: 42"})))


def test_groundkit_plugins_shows_the_failed_type_with_its_reason(fresh_registry):
    def register_frames(register):
        register(gk.Frame("unit", scale=1.0))

    fresh_registry(("stars", star_plugin({"groundkit": "star: 42"})),
                   ("copycat", types.SimpleNamespace(register_frames=gk.hookimpl(register_frames))))
    result = CliRunner().invoke(app, ["plugins", "--json"])
    assert result.exit_code == 0, result.output
    failures = {f["name"]: f["error"] for f in json.loads(result.stdout)["failures"]}
    assert "grounding type 'star'" in failures["stars"] and "does not compile" in failures["stars"]
    assert "frame 'unit' is registered twice: by plugin 'frames'" in failures["copycat"]
    table = CliRunner().invoke(app, ["plugins"])
    assert table.exit_code == 0 and "failed" in table.stdout and "stars" in table.stdout
