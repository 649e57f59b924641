"""Training configuration: one YAML file -> typed dataclasses (+ TRL arguments passed through).

Sections (every key optional unless noted)::

    model:      {path: tiny:gemma3 | CHECKPOINT_DIR (required), backbone, dtype, seed, freeze_vision: false}
    lora:       {enabled: true, r: 16, alpha: 32, dropout: 0.05, target_modules: null (backbone regex), bias: none}
    data:       {train: FILE.jsonl | HF_DATASET_DIR (required), images: ROOT, trace_field: completion,
                 trace_dialect: null, traces: dataset | oracle, limit: null, split: train}
    format:     {dialect: null (backbone native), frame: null, types: [point], instruction: full | none}
    rewards:    {format: 1.0, answer: 1.0, point_f1: 0.5}          (GRPO; term name -> weight, or
                {weight: 0.5, max_distance: 0.1} for a term with parameters; or the spec
                string "format,answer,point_f1(max_distance=0.1):0.5")
    reading:    strict | lenient   (how reward terms read completions; format stays strict; docs/rewards.md)
    generation: {constrained: true, mask_consistent_logps: true, backend: groundkit,
                 max_new_tokens: 256, num_generations: 8, temperature: 1.0}
    dual_stream: {enabled: false, textual_rewards: {format: 1.0, answer: 1.0, consistency: 1.0}}
    diagnostics: {image_reliance_every: 50, image_reliance_rows: 8, image_reliance_warn_after: 200}
    trl:        any SFTConfig / GRPOConfig argument (output_dir, learning_rate, max_steps, ...)
    resume_from_checkpoint: null | true | CHECKPOINT_DIR

An unknown key, a wrong type or a bad TRL argument raises :class:`ConfigError` naming the key.
"""

from __future__ import annotations

import dataclasses
import types as pytypes
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from groundkit.errors import GroundkitError

KINDS = ("sft", "grpo")


class ConfigError(GroundkitError, ValueError):
    """A training config key is unknown, missing or has a bad value; the message names the key."""

    def __init__(self, key: str, message: str):
        self.key = key
        super().__init__(f"config key {key!r}: {message}")


@dataclass
class ModelConfig:
    path: str = ""
    backbone: str | None = None
    dtype: str | None = None
    seed: int = 0
    freeze_vision: bool = False  # keep the vision tower's weights (the vision-language merger still trains)


@dataclass
class LoraSection:
    enabled: bool = True
    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: Any = None  # None: the backbone's regex; else a regex string or a list of module names
    bias: str = "none"


@dataclass
class DataConfig:
    train: str = ""
    images: str | None = None
    trace_field: str = "completion"
    trace_dialect: str | None = None
    traces: str = "dataset"  # dataset: traces from trace_field; oracle: written from the ground truth
    limit: int | None = None
    split: str = "train"


@dataclass
class FormatConfig:
    dialect: str | None = None
    frame: str | None = None
    types: list[str] | None = None
    instruction: str = "full"  # the prompt's system message: full (the format, with an example) | none


@dataclass
class GenerationConfig:
    constrained: bool = True
    mask_consistent_logps: bool = True
    backend: str = "groundkit"
    max_new_tokens: int = 256
    num_generations: int = 8
    temperature: float = 1.0


@dataclass
class DualStreamConfig:
    enabled: bool = False
    textual_rewards: dict[str, Any] = field(default_factory=lambda: {"format": 1.0, "answer": 1.0, "consistency": 1.0})
    textual_instruction: str | None = None


@dataclass
class DiagnosticsConfig:
    image_reliance_every: int = 50  # steps between image-reliance measurements (0: off)
    image_reliance_rows: int = 8  # held rows (images rotated among them)
    image_reliance_warn_after: int = 200  # warn if the model still ignores the image after this many steps


@dataclass
class TrainConfig:
    kind: str = "grpo"
    model: ModelConfig = field(default_factory=ModelConfig)
    lora: LoraSection = field(default_factory=LoraSection)
    data: DataConfig = field(default_factory=DataConfig)
    format: FormatConfig = field(default_factory=FormatConfig)
    rewards: dict[str, Any] = field(default_factory=lambda: {"format": 1.0, "answer": 1.0})  # term -> weight | {weight, **params}
    reading: str = "strict"
    generation: GenerationConfig = field(default_factory=GenerationConfig)
    dual_stream: DualStreamConfig = field(default_factory=DualStreamConfig)
    diagnostics: DiagnosticsConfig = field(default_factory=DiagnosticsConfig)
    trl: dict[str, Any] = field(default_factory=dict)
    resume_from_checkpoint: Any = None
    source: str | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d.pop("source")
        return d

    def save(self, path: str | Path) -> Path:
        """Write the config as YAML (checkpoints carry it as ``groundkit_config.yaml``)."""
        import yaml

        path = Path(path)
        path.write_text(yaml.safe_dump(self.to_dict(), sort_keys=False), encoding="utf-8")
        return path

    @property
    def output_dir(self) -> str:
        return str(self.trl.get("output_dir") or f"groundkit-{self.kind}")


def _check(value: Any, hint: Any, key: str) -> Any:
    """``value`` converted to the annotated type, or a ConfigError naming ``key``."""
    origin = typing.get_origin(hint)
    if hint is Any:
        return value
    if origin in (typing.Union, pytypes.UnionType):
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _check(value, arg, key)
            except ConfigError as exc:
                errors.append(exc)
        raise errors[0] if errors else ConfigError(key, f"bad value {value!r}")
    if origin is list:
        (inner,) = typing.get_args(hint)
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(key, f"must be a list, got {type(value).__name__}")
        return [_check(v, inner, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        kt, vt = typing.get_args(hint)
        if not isinstance(value, Mapping):
            raise ConfigError(key, f"must be a mapping, got {type(value).__name__}")
        return {_check(k, kt, key): _check(v, vt, f"{key}.{k}") for k, v in value.items()}
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, key)
    if hint is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if hint is bool and not isinstance(value, bool):
        raise ConfigError(key, f"must be true or false, got {value!r}")
    if hint is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise ConfigError(key, f"must be an integer, got {value!r}")
    if hint is str and not isinstance(value, str):
        raise ConfigError(key, f"must be text, got {value!r}")
    return value


def _build(cls: type, data: Any, prefix: str) -> Any:
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(prefix or "<root>", f"must be a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls) if f.name != "source"}
    kwargs = {}
    for key, value in data.items():
        full = f"{prefix}.{key}" if prefix else str(key)
        if key not in names:
            raise ConfigError(full, f"unknown key; known: {', '.join(sorted(names))}")
        kwargs[key] = _check(value, hints[key], full)
    return cls(**kwargs)


def _plain(value: Any) -> Any:
    """Tuples as lists (YAML-safe), recursively."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _rewards(value: Any, key: str) -> dict[str, Any]:
    """``{term: weight | {weight: w, param: value}}``, a list of items or a spec string
    ``format,answer,point_f1(max_distance=0.1):0.5`` -> ``{term: weight}``, or
    ``{term: {weight: w, **params}}`` for a term with parameters."""
    from groundkit.rewards.spec import parse_reward_spec

    if value is None:
        value = {}
    if not isinstance(value, (str, list, tuple, Mapping)):
        raise ConfigError(key, f"must be a mapping {{term: weight}}, a list of terms or a spec string, got {type(value).__name__}")
    for name, entry in (value.items() if isinstance(value, Mapping) else ()):
        if isinstance(entry, Mapping) and any(not isinstance(k, str) for k in entry):
            raise ConfigError(f"{key}.{name}", f"parameter names must be text, got {sorted(map(str, entry))}")
    try:
        items = parse_reward_spec(value)
    except GroundkitError as exc:
        raise ConfigError(key, str(exc)) from None
    out: dict[str, Any] = {}
    for item in items:
        if item.name in out:
            raise ConfigError(f"{key}.{item.name}", "the term appears twice")
        out[item.name] = {"weight": item.weight, **_plain(item.params)} if item.params else item.weight
    return out


def reward_terms(rewards: Mapping[str, Any], key: str = "rewards") -> list[tuple[Any, float]]:
    """``(RewardTerm, weight)`` pairs of a config's ``rewards`` (or ``textual_rewards``) section,
    parameters applied; a :class:`ConfigError` naming the term for an unknown term or parameter."""
    from groundkit.registry import get_registry
    from groundkit.rewards.spec import configure_term, parse_reward_spec

    reg = get_registry()
    terms = reg.reward_terms.names()
    out = []
    for item in parse_reward_spec(rewards):
        if item.name not in terms:
            raise ConfigError(f"{key}.{item.name}", f"unknown reward term; known: {', '.join(terms)}")
        try:
            out.append((configure_term(reg.reward_term(item.name), item.params), item.weight))
        except GroundkitError as exc:
            raise ConfigError(f"{key}.{item.name}", str(exc)) from None
    return out


def load_config(source: str | Path | Mapping[str, Any], kind: str | None = None, overrides: Mapping[str, Any] | None = None) -> TrainConfig:
    """A :class:`TrainConfig` from a YAML file or a mapping; ``kind`` (sft / grpo) overrides the file's."""
    import yaml

    origin = None
    if isinstance(source, Mapping):
        data = dict(source)
    else:
        origin = str(source)
        path = Path(source)
        if not path.exists():
            raise ConfigError("<file>", f"config file not found: {path}")
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise ConfigError("<file>", f"{path} is not valid YAML: {exc}") from exc
        if not isinstance(data, Mapping):
            raise ConfigError("<root>", f"{path} must hold a mapping of sections")
        data = dict(data)
    for key, value in (overrides or {}).items():
        section, _, sub = key.partition(".")
        if sub:
            data[section] = {**(data.get(section) or {}), sub: value}
        else:
            data[section] = value
    if kind is not None:
        data["kind"] = kind
    for key in ("rewards",):
        if key in data:
            data[key] = _rewards(data[key], key)
    if isinstance(data.get("dual_stream"), Mapping) and "textual_rewards" in data["dual_stream"]:
        data["dual_stream"] = {**data["dual_stream"], "textual_rewards": _rewards(data["dual_stream"]["textual_rewards"], "dual_stream.textual_rewards")}
    cfg = _build(TrainConfig, data, "")
    cfg.source = origin
    validate(cfg)
    return cfg


def validate(cfg: TrainConfig) -> None:
    """Checks that need more than types: required keys, known names, value ranges."""
    from groundkit.backbones.prompts import check_instruction_mode
    from groundkit.registry import get_registry

    if cfg.kind not in KINDS:
        raise ConfigError("kind", f"must be one of {', '.join(KINDS)}, got {cfg.kind!r}")
    if not cfg.model.path:
        raise ConfigError("model.path", "required: a local checkpoint directory or tiny:<backbone>")
    if not cfg.data.train:
        raise ConfigError("data.train", "required: a ground-truth/trace JSONL file or an HF dataset directory")
    if cfg.data.traces not in ("dataset", "oracle"):
        raise ConfigError("data.traces", f"must be dataset or oracle, got {cfg.data.traces!r}")
    reg = get_registry()
    if cfg.format.dialect is not None and cfg.format.dialect not in reg.dialects.names():
        raise ConfigError("format.dialect", f"unknown dialect {cfg.format.dialect!r}; known: {', '.join(reg.dialects.names())}")
    try:
        check_instruction_mode(cfg.format.instruction)
    except GroundkitError as exc:
        raise ConfigError("format.instruction", str(exc)) from exc
    for t in cfg.format.types or ():
        if t not in reg.grounding_types.names():
            raise ConfigError("format.types", f"unknown grounding type {t!r}; known: {', '.join(reg.grounding_types.names())}")
    for section, rewards in (("rewards", cfg.rewards), ("dual_stream.textual_rewards", cfg.dual_stream.textual_rewards)):
        reward_terms(rewards, section)
    if cfg.reading not in ("strict", "lenient"):
        raise ConfigError("reading", f"must be strict or lenient, got {cfg.reading!r}")
    if cfg.kind == "grpo" and not cfg.rewards:
        raise ConfigError("rewards", "GRPO needs at least one reward term")
    g = cfg.generation
    if g.max_new_tokens < 1:
        raise ConfigError("generation.max_new_tokens", f"must be >= 1, got {g.max_new_tokens}")
    if g.num_generations < 2:
        raise ConfigError("generation.num_generations", f"GRPO needs >= 2 generations per prompt, got {g.num_generations}")
    if g.temperature <= 0:
        raise ConfigError("generation.temperature", f"must be > 0, got {g.temperature}")
    d = cfg.diagnostics
    if d.image_reliance_every < 0:
        raise ConfigError("diagnostics.image_reliance_every", f"must be >= 0 (0 turns it off), got {d.image_reliance_every}")
    if d.image_reliance_every and d.image_reliance_rows < 2:
        raise ConfigError("diagnostics.image_reliance_rows", f"must be >= 2 (images are swapped among them), got {d.image_reliance_rows}")
    if cfg.lora.r < 1:
        raise ConfigError("lora.r", f"must be >= 1, got {cfg.lora.r}")
    managed = {"max_completion_length", "num_generations", "temperature", "reward_weights"}
    for key in managed & cfg.trl.keys():
        raise ConfigError(f"trl.{key}", "set it in the generation / rewards sections (groundkit manages it)")
