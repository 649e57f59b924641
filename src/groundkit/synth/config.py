"""The synthesis config (YAML), validated into dataclasses; errors name the bad key.

Example::

    input: scenes/scenes.jsonl        # ground-truth JSONL; image paths relative to it
    out: synth-out
    limit: 100                        # optional
    batch_size: 8                     # records per batch (teacher, grounder, write)
    teacher:                          # exactly one of model / completions / simulate
      model: tiny:qwen2.5-vl          # or a local checkpoint directory
      dialect: groundkit              # the format the teacher answers in
      constrained: true               # decode under the dialect's grammar (default; false: free text)
      max_new_tokens: 256
    extractor: {name: rule}
    grounder: {name: oracle}          # or {name: sam3, checkpoint: /path/to/sam3, threshold: 0.4}
    ambiguity: best                   # best | all | drop: several masks for a singular phrase
    output: {dialect: groundkit, frame: rel-1000, grounding: auto, max_polygon_vertices: 16}
    # output.grounding: auto, point, box, mask or any registered type with from_mask (e.g. a
    # plugin's ellipse); output.grounding_params: keyword arguments of that type's from_mask

Relative paths are relative to the config file.
"""

from __future__ import annotations

import hashlib
import inspect
import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from groundkit.errors import ConfigError
from groundkit.synth.align import AMBIGUITY, grounding_kind


@dataclass
class TeacherConfig:
    model: str | None = None
    completions: str | None = None
    simulate: dict[str, Any] | None = None
    field: str | None = None
    backbone: str | None = None
    dialect: str = "groundkit"
    constrained: bool = True
    max_new_tokens: int = 256
    batch_size: int = 8
    sample: bool = False
    temperature: float = 1.0
    seed: int = 0
    device: str | None = None
    dtype: str | None = None


@dataclass
class PluginConfig:
    name: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class OutputConfig:
    dialect: str = "groundkit"
    frame: str | None = None
    grounding: str = "auto"
    max_polygon_vertices: int = 16
    grounding_params: dict[str, Any] = field(default_factory=dict)


@dataclass
class SynthConfig:
    """Everything a run needs; :func:`load_config` reads it from YAML (or a dict)."""

    input: Path
    out: Path
    teacher: TeacherConfig
    extractor: PluginConfig = field(default_factory=lambda: PluginConfig("rule"))
    grounder: PluginConfig = field(default_factory=lambda: PluginConfig("oracle"))
    ambiguity: str = "best"
    dedupe_iou: float = 0.8
    output: OutputConfig = field(default_factory=OutputConfig)
    limit: int | None = None
    batch_size: int = 8

    def fingerprint(self) -> str:
        """A hash of everything that changes the output (not ``limit``/``batch_size``/``out``)."""
        d = asdict(self)
        for key in ("limit", "batch_size", "out"):
            d.pop(key)
        d["teacher"].pop("batch_size")
        if d["teacher"]["model"] is None:  # only a model teacher decodes: other runs keep their fingerprint
            d["teacher"].pop("constrained")
        if not d["output"]["grounding_params"]:  # runs without parameters keep their fingerprint
            d["output"].pop("grounding_params")
        return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(asdict(self), default=str))


_TYPES = {int: "an integer", float: "a number", str: "text", bool: "true or false", dict: "a mapping"}


def _value(value: Any, kind: type, key: str, optional: bool) -> Any:
    if value is None:
        if optional:
            return None
        raise ConfigError("is required", key)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ConfigError(f"must be {_TYPES[kind]}, got {value!r}", key)
    return value


def _section(cls: type, data: Any, prefix: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"must be a mapping, got {data!r}", prefix)
    spec = {f.name: f for f in fields(cls)}
    for key in data:
        if key not in spec:
            raise ConfigError(f"unknown key; known: {', '.join(spec)}", f"{prefix}.{key}")
    kwargs = {}
    for name, f in spec.items():
        if name in data:
            kind, optional = _kind(f.type)
            kwargs[name] = _value(data[name], kind, f"{prefix}.{name}", optional)
    return cls(**kwargs)


def _kind(annotation: str) -> tuple[type, bool]:
    optional = "None" in annotation
    base = annotation.replace("| None", "").strip()
    for name, kind in (("int", int), ("float", float), ("str", str), ("bool", bool), ("dict", dict)):
        if base.startswith(name):
            return kind, optional
    return str, optional


def _plugin(data: Any, key: str) -> PluginConfig:
    if isinstance(data, str):
        return PluginConfig(data)
    if not isinstance(data, dict) or not isinstance(data.get("name"), str):
        raise ConfigError("must be a name or a mapping with 'name' and the plugin's parameters", key)
    return PluginConfig(data["name"], {k: v for k, v in data.items() if k != "name"})


def check_grounding(kind: str, params: dict[str, Any]) -> None:
    """``output.grounding`` names ``auto`` or a registered type with ``from_mask``, and
    ``output.grounding_params`` are parameters of that ``from_mask`` (a :class:`ConfigError` naming the key)."""
    for name in ("point", "box") if kind == "auto" else (kind,):
        sig = inspect.signature(grounding_kind(name).from_mask)
        try:
            sig.bind(None, **params)
        except TypeError as exc:
            known = [p.name for p in list(sig.parameters.values())[1:] if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
            bad = next((k for k in params if k not in sig.parameters), None)
            key = f"output.grounding_params.{bad}" if bad else "output.grounding_params"
            raise ConfigError(f"{name}.from_mask does not take it ({exc}); its parameters: {', '.join(known) or '(none)'}", key) from None


TOP = ("input", "out", "teacher", "extractor", "grounder", "ambiguity", "dedupe_iou", "output", "limit", "batch_size")


def config_from_dict(data: Any, base: Path | None = None) -> SynthConfig:
    """Validate a config mapping (relative paths against ``base``)."""
    if not isinstance(data, dict):
        raise ConfigError(f"a synth config must be a mapping, got {type(data).__name__}")
    for key in data:
        if key not in TOP:
            raise ConfigError(f"unknown key; known: {', '.join(TOP)}", key)
    base = (base or Path(".")).resolve()  # absolute: a resumed run from another cwd is the same run

    def path(key: str) -> Path:
        p = Path(_value(data.get(key), str, key, False))
        return p if p.is_absolute() else base / p

    teacher = _section(TeacherConfig, data.get("teacher"), "teacher") if "teacher" in data else None
    if teacher is None:
        raise ConfigError("is required (model, completions or simulate)", "teacher")
    given = [k for k in ("model", "completions", "simulate") if getattr(teacher, k) is not None]
    if len(given) != 1:
        raise ConfigError(f"give exactly one of model, completions, simulate (got {', '.join(given) or 'none'})", "teacher")
    if teacher.completions and not Path(teacher.completions).is_absolute():
        teacher.completions = str(base / teacher.completions)
    if teacher.max_new_tokens < 1:
        raise ConfigError("must be at least 1", "teacher.max_new_tokens")
    cfg = SynthConfig(input=path("input"), out=path("out"), teacher=teacher)
    if "extractor" in data:
        cfg.extractor = _plugin(data["extractor"], "extractor")
    if "grounder" in data:
        cfg.grounder = _plugin(data["grounder"], "grounder")
    if "output" in data:
        cfg.output = _section(OutputConfig, data["output"], "output")
    cfg.ambiguity = _value(data.get("ambiguity", "best"), str, "ambiguity", False)
    if cfg.ambiguity not in AMBIGUITY:
        raise ConfigError(f"must be one of {', '.join(AMBIGUITY)}, got {cfg.ambiguity!r}", "ambiguity")
    check_grounding(cfg.output.grounding, cfg.output.grounding_params)
    if cfg.output.max_polygon_vertices < 3:
        raise ConfigError("must be at least 3", "output.max_polygon_vertices")
    cfg.dedupe_iou = _value(data.get("dedupe_iou", 0.8), float, "dedupe_iou", False)
    cfg.limit = _value(data.get("limit"), int, "limit", True)
    cfg.batch_size = _value(data.get("batch_size", 8), int, "batch_size", False)
    for key in ("limit", "batch_size"):
        value = getattr(cfg, key)
        if value is not None and value < 1:
            raise ConfigError(f"must be at least 1, got {value}", key)
    return cfg


def load_config(path: str | Path) -> SynthConfig:
    """Read and validate a YAML config; paths in it are relative to the file."""
    import yaml

    p = Path(path)
    if not p.exists():
        raise ConfigError(f"config file not found: {p}")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p} is not valid YAML: {exc}") from exc
    return config_from_dict(data, p.parent)
