"""Loading a model spec: a local checkpoint directory (the backbone detected from its config)
or ``tiny:<backbone>`` (random-initialised, offline)."""

from __future__ import annotations

import json
from pathlib import Path

from groundkit.errors import DataError
from groundkit.interfaces.backbone import Backbone, BackboneError, LoadedModel

__all__ = ["Backbone", "BackboneError", "LoadedModel", "detect_backbone", "load_model"]


def detect_backbone(path: str | Path, backbones: dict[str, Backbone]) -> Backbone:
    """The backbone whose ``model_types`` include the checkpoint's ``config.json`` model_type."""
    config = Path(path) / "config.json"
    if not config.exists():
        raise BackboneError(f"{path} is not a checkpoint directory (no config.json); or use tiny:<backbone>")
    try:
        model_type = json.loads(config.read_text(encoding="utf-8")).get("model_type")
    except json.JSONDecodeError as exc:
        raise DataError(f"{config}: not JSON ({exc})") from exc
    for b in backbones.values():
        if model_type in b.model_types:
            return b
    raise BackboneError(
        f"no backbone plugin loads model_type {model_type!r} ({config}); pass --backbone, known: {', '.join(sorted(backbones))}"
    )


def load_model(
    spec: str,
    backbone: str | None = None,
    dtype: str | None = None,
    device: str | None = None,
    quantization: str | None = None,
    seed: int = 0,
) -> LoadedModel:
    """Load ``spec``: a local checkpoint directory, or ``tiny:<backbone>`` (random, offline)."""
    from groundkit.registry import get_registry

    reg = get_registry()
    if spec.startswith("tiny:"):
        loaded = reg.backbone(spec.removeprefix("tiny:")).tiny(seed=seed)
        if device and device != "cpu":
            loaded.model.to(device)
        return loaded
    chosen = reg.backbone(backbone) if backbone else detect_backbone(spec, {n: reg.backbone(n) for n in reg.backbones.names()})
    return chosen.load(spec, dtype=dtype, device=device, quantization=quantization)
