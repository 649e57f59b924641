"""One test per hook: a plugin using the hook is collected, named, and its object works."""

from __future__ import annotations

import re
import types

import pytest

import groundkit as gk


def plugin(**hooks):
    """A plugin object from hook functions (each marked with @hookimpl)."""
    return types.SimpleNamespace(**{name: gk.hookimpl(fn) for name, fn in hooks.items()})


def test_hook_register_frames(fresh_registry):
    def register_frames(register):
        register(gk.Frame("rel-100", scale=100.0, description="integers 0..100"))

    reg = fresh_registry(("myframes", plugin(register_frames=register_frames)))
    assert reg.plugins["myframes"].registered == [("frame", "rel-100")]
    t = gk.parse("<think><point>(50, 25)</point></think><answer>1</answer>", frame="rel-100")
    assert t.groundings[0].coords == (0.5, 0.25)
    with pytest.raises(gk.ParseError, match="outside"):
        gk.parse("<think><point>(500, 25)</point></think><answer>1</answer>", frame="rel-100")


def test_hook_register_grounding_types(fresh_registry):
    class Star(gk.GroundingType):
        name = "star"
        arity = 2

        def __init__(self):
            rule = 'star: "<star>(" NUM _SEP NUM ")</star>"'
            super().__init__({"groundkit": gk.Syntax(rule, lambda label, v: f"<star>({v[0]}, {v[1]})</star>", writes_label=False)})

    def register_grounding_types(register):
        register(Star())

    reg = fresh_registry(("stars", plugin(register_grounding_types=register_grounding_types)))
    assert ("grounding type", "star") in reg.plugins["stars"].registered
    assert "star" in gk.supported_types("groundkit")
    t = gk.parse("<think>a <star>(1, 2)</star></think><answer>1</answer>")
    assert t.groundings[0].type == "star"
    assert gk.format_trace(t) == "<think>a <star>(1, 2)</star></think><answer>1</answer>"


def test_hook_register_dialects(fresh_registry):
    skeleton = gk.get_registry().dialect("groundkit").skeleton.replace('"<think>"', '"<reason>"').replace('"</think>"', '"</reason>"')

    def register_dialects(register):
        register(gk.Dialect("reason", skeleton, default_frame="rel-1000", layout="<reason>{think}</reason><answer>{answer}</answer>"))

    # the dialect reuses the built-in types' syntax for the groundkit dialect
    import groundkit_plugins.point as point_plugin

    class ReasonPoint(point_plugin.Point):
        def __init__(self):
            super().__init__()
            self.syntaxes = {"reason": self.syntaxes["groundkit"]}

    def register_grounding_types(register):
        register(ReasonPoint())

    reg = fresh_registry(
        ("reason", plugin(register_dialects=register_dialects, register_grounding_types=register_grounding_types)),
        entry_points=False,
    )
    # without entry points only this plugin is loaded; add the frames it needs
    import groundkit_plugins.frames as frames_plugin

    reg.add_plugin(frames_plugin, "frames")
    reg.collect_frames()
    text = "<reason>see <point>(1, 2)</point></reason><answer>1</answer>"
    assert gk.format_trace(gk.parse(text, "reason"), "reason") == text


def test_duplicate_plugin_name_is_rejected_with_a_warning_and_others_load(fresh_registry, monkeypatch, caplog):
    copied = gk.Frame("rel-1000", scale=7.0)

    def register_frames(register):
        register(copied)
        register(gk.Frame("rel-7", scale=7.0))

    both = r"registered twice: by plugin 'frames' \(groundkit .*\) and by plugin 'copycat'"
    reg = fresh_registry(("copycat", plugin(register_frames=register_frames)))
    assert reg.frame("rel-1000") is not copied and reg.frame("rel-7").scale == 7.0  # the first registration wins
    assert reg.plugins["copycat"].registered == [("frame", "rel-7")]
    assert [f.name for f in reg.failures] == ["copycat"] and re.search(both, reg.failures[0].error)
    assert re.search(both, caplog.text) and "GROUNDKIT_STRICT_PLUGINS" in caplog.text
    assert gk.parse("<think><point>(500, 25)</point></think><answer>1</answer>").groundings  # everything else works
    monkeypatch.setenv("GROUNDKIT_STRICT_PLUGINS", "1")
    with pytest.raises(gk.PluginError, match=both):
        fresh_registry(("copycat", plugin(register_frames=register_frames)))


def test_registering_the_wrong_kind_of_object_is_rejected(fresh_registry, monkeypatch):
    def register_frames(register):
        register("rel-1000")

    reg = fresh_registry(("bad", plugin(register_frames=register_frames)))
    assert [(f.name, "expected Frame" in f.error) for f in reg.failures] == [("bad", True)]
    monkeypatch.setenv("GROUNDKIT_STRICT_PLUGINS", "1")
    with pytest.raises(gk.PluginError, match="expected Frame"):
        fresh_registry(("bad", plugin(register_frames=register_frames)))


def test_invalid_type_name_is_rejected(fresh_registry, monkeypatch):
    class Bad(gk.GroundingType):
        name = "Bad-Name"

    def register_grounding_types(register):
        register(Bad())

    reg = fresh_registry(("bad", plugin(register_grounding_types=register_grounding_types)))
    assert "invalid name" in reg.failures[0].error and "Bad-Name" not in reg.grounding_types.names()
    monkeypatch.setenv("GROUNDKIT_STRICT_PLUGINS", "1")
    with pytest.raises(gk.PluginError, match="invalid name"):
        fresh_registry(("bad", plugin(register_grounding_types=register_grounding_types)))


def test_a_hook_that_raises_is_reported_not_fatal(fresh_registry, monkeypatch):
    def register_frames(register):
        raise RuntimeError("boom")

    reg = fresh_registry(("broken", plugin(register_frames=register_frames)))
    assert [(f.name, f.error) for f in reg.failures] == [("broken", "RuntimeError: boom")]
    assert "rel-1000" in reg.frames.names()
    monkeypatch.setenv("GROUNDKIT_STRICT_PLUGINS", "1")
    with pytest.raises(RuntimeError, match="boom"):
        fresh_registry(("broken", plugin(register_frames=register_frames)))


def test_a_type_rule_may_only_define_its_own_names(fresh_registry):
    class Sneaky(gk.GroundingType):
        name = "sneaky"

        def __init__(self):
            super().__init__({"groundkit": gk.Syntax('sneaky: "<s>" NUM _SEP NUM "</s>"\nTEXT: /x/', lambda label, v: "")})

    def register_grounding_types(register):
        register(Sneaky())

    reg = fresh_registry(("sneaky", plugin(register_grounding_types=register_grounding_types)))
    assert "defines 'TEXT'" in reg.failures[0].error
    with pytest.raises(gk.PluginError, match="grounding type 'sneaky' is unavailable.*plugin 'sneaky'.*defines 'TEXT'"):
        gk.get_grammar("groundkit", types=["sneaky"])


def test_hook_register_backbones(fresh_registry, tmp_path):
    import json

    import groundkit_plugins.qwen_vl as qwen

    class MyQwen(qwen.Qwen2VL):
        name = "my-qwen"
        model_types = ("my_qwen",)
        native_dialect = "groundkit"

    def register_backbones(register):
        register(MyQwen())

    reg = fresh_registry(("mine", plugin(register_backbones=register_backbones)))
    assert reg.plugins["mine"].registered == [("backbone", "my-qwen")]
    loaded = gk.load_model("tiny:my-qwen")
    assert loaded.backbone.name == "my-qwen" and type(loaded.model).__name__ == "Qwen2VLForConditionalGeneration"
    path = loaded.save(tmp_path / "ckpt")
    config = json.loads((path / "config.json").read_text())
    (path / "config.json").write_text(json.dumps({**config, "model_type": "qwen2_vl"}))
    assert gk.load_model(str(path), backbone="my-qwen").backbone.name == "my-qwen"


def test_hook_register_decoding_backends(fresh_registry):
    class AllowAll(gk.DecodingBackend):
        name = "allow-all"
        description = "no constraint (a test backend)"

        def logits_processor(self, tokenizer, grammar, image_sizes=None, max_new_tokens=None):
            return lambda input_ids, scores: scores

    def register_decoding_backends(register):
        register(AllowAll())

    reg = fresh_registry(("mine", plugin(register_decoding_backends=register_decoding_backends)))
    assert reg.plugins["mine"].registered == [("decoding backend", "allow-all")]
    from groundkit.decoding import grounded_logits_processor

    proc = grounded_logits_processor(None, gk.get_grammar("groundkit"), backend="allow-all")
    assert proc(None, 1.5) == 1.5
    # the built-in peer adapters register through the same hook
    assert ("decoding backend", "llguidance") in reg.plugins["decoding_peers"].registered
    assert ("decoding backend", "xgrammar") in reg.plugins["decoding_peers"].registered
    for name in ("llguidance", "xgrammar"):
        backend = reg.decoding_backend(name)
        assert backend.unavailable() is None or "not installed" in backend.unavailable()
