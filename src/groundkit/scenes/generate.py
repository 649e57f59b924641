"""Generate synthetic scenes: pictures plus ground truth (JSONL, the ground-truth schema).

Scene ``i`` of seed ``s`` depends only on ``(s, i)`` and the size preset, so a run is
reproducible and a larger run extends a smaller one. Splits are a seeded partition.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from groundkit.errors import GroundkitError
from groundkit.scenes.compose import BACKGROUNDS, paint, place
from groundkit.scenes.questions import COUNT_BY, counting_record, plan_counting, plan_spatial, spatial_record
from groundkit.scenes.shapes import COLORS, SHAPES

SOURCE = "groundkit-scenes"


@dataclass(frozen=True)
class SceneConfig:
    """Image size and scene complexity. ``spatial_share`` of scenes ask spatial questions, the rest count."""

    width: int = 384
    height: int = 384
    max_objects: int = 10
    max_count: int = 6
    spatial_share: float = 0.5
    noise: float = 8.0
    shapes: tuple[str, ...] = SHAPES
    colors: tuple[str, ...] = field(default_factory=lambda: tuple(COLORS))
    min_count: int = 0  # counting: fewest targets (0 allows scenes with none)
    count_by: tuple[str, ...] = COUNT_BY  # counting: what questions name (shape, colour or both), drawn uniformly
    max_distractors: int | None = None  # counting: None = up to max_objects - targets (at least one)
    large_share: float = 0.35  # share of large objects
    backgrounds: tuple[str, ...] = BACKGROUNDS

    def __post_init__(self) -> None:
        if not 0 <= self.min_count <= self.max_count:
            raise GroundkitError(f"scene config: need 0 <= min_count ({self.min_count}) <= max_count ({self.max_count})")
        if self.max_count > self.max_objects:
            raise GroundkitError(f"scene config: max_count {self.max_count} exceeds max_objects {self.max_objects}")
        unknown = [c for c in self.count_by if c not in ("both", "shape", "color")]
        if unknown or not self.count_by:
            raise GroundkitError(f"scene config: count_by must name both / shape / color, got {list(self.count_by)}")
        bad = [b for b in self.backgrounds if b not in BACKGROUNDS] + [s for s in self.shapes if s not in SHAPES]
        bad += [c for c in self.colors if c not in COLORS]
        if bad or not self.backgrounds or not self.shapes or not self.colors:
            raise GroundkitError(f"scene config: unknown or empty backgrounds / shapes / colors: {bad}")


SIZES: dict[str, SceneConfig] = {
    "tiny": SceneConfig(128, 128, max_objects=5, max_count=4),
    "small": SceneConfig(256, 256, max_objects=8, max_count=5),
    "base": SceneConfig(384, 384, max_objects=10, max_count=6),
    "large": SceneConfig(640, 480, max_objects=14, max_count=9),
}


def scene_config(size: str | SceneConfig) -> SceneConfig:
    """A preset by name (``tiny``, ``small``, ``base``, ``large``) or ``WxH`` (base complexity)."""
    if isinstance(size, SceneConfig):
        return size
    if size in SIZES:
        return SIZES[size]
    w, sep, h = size.lower().partition("x")
    if sep and w.isdigit() and h.isdigit() and 64 <= int(w) <= 4096 and 64 <= int(h) <= 4096:
        return replace(SIZES["base"], width=int(w), height=int(h))
    raise GroundkitError(f"unknown scene size {size!r}; use one of {', '.join(SIZES)} or WxH (64..4096)")


def make_scene(seed: int, index: int, config: SceneConfig | str = "base") -> tuple[dict[str, Any], Image.Image]:
    """One scene: its ground-truth record (without ``image``) and its picture."""
    cfg = scene_config(config)
    rng = np.random.default_rng([seed, index])
    spatial = rng.random() < cfg.spatial_share
    for _ in range(200):
        if spatial:
            specs = plan_spatial(rng, cfg.shapes, cfg.colors, cfg.max_objects)
        else:
            target, specs = plan_counting(rng, cfg.shapes, cfg.colors, cfg.max_objects, cfg.max_count, min_count=cfg.min_count,
                                          count_by=cfg.count_by, max_distractors=cfg.max_distractors,
                                          large_share=cfg.large_share)
        objects = place(rng, specs, cfg.width, cfg.height)
        if objects is None:
            continue
        qa = spatial_record(rng, objects) if spatial else counting_record(target, objects)
        if qa is None:
            continue
        record = {"id": f"scene-{seed}-{index:06d}", "width": cfg.width, "height": cfg.height, **qa}
        record["source"] = SOURCE
        record["scene"] = [{"label": o.label, "box": [round(v, 6) for v in o.box]} for o in objects]
        return record, paint(rng, objects, cfg.width, cfg.height, cfg.noise, cfg.backgrounds)
    raise GroundkitError(f"scene {index} of seed {seed}: no layout fits {cfg.width}x{cfg.height} after 200 tries")


def parse_split(spec: str | Mapping[str, float] | None) -> dict[str, float]:
    """``"train=0.9,test=0.1"`` -> ``{"train": 0.9, "test": 0.1}`` (shares must sum to 1)."""
    if spec is None or spec == "":
        return {}
    if isinstance(spec, Mapping):
        shares = {str(k): float(v) for k, v in spec.items()}
    else:
        shares = {}
        for part in spec.split(","):
            name, sep, value = part.partition("=")
            try:
                shares[name.strip()] = float(value)
            except ValueError:
                raise GroundkitError(f"split must look like train=0.9,test=0.1; got {spec!r}") from None
            if not sep or not name.strip().isidentifier():
                raise GroundkitError(f"split must look like train=0.9,test=0.1; got {spec!r}")
    if any(v < 0 for v in shares.values()) or abs(sum(shares.values()) - 1) > 1e-6:
        raise GroundkitError(f"split shares must be non-negative and sum to 1, got {spec!r}")
    return shares


def assign_splits(n: int, seed: int, shares: Mapping[str, float]) -> list[str]:
    """The split of each scene index: exact counts (largest remainder), seeded order."""
    names = list(shares)
    raw = [shares[k] * n for k in names]
    counts = [int(r) for r in raw]
    for k in sorted(range(len(names)), key=lambda k: counts[k] - raw[k])[: n - sum(counts)]:
        counts[k] += 1
    labels = [name for name, c in zip(names, counts) for _ in range(c)]
    order = np.random.default_rng([seed, 7919]).permutation(n)
    out = [""] * n
    for pos, index in enumerate(order):
        out[int(index)] = labels[pos]
    return out


def generate_scenes(
    out: str | Path,
    n: int,
    seed: int = 0,
    size: str | SceneConfig = "base",
    split: str | Mapping[str, float] | None = None,
    on_scene: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Write ``n`` scenes under ``out``: ``images/<id>.png`` and one JSONL per split
    (``scenes.jsonl`` without a split), plus ``manifest.json``. Returns the manifest."""
    if n < 1:
        raise GroundkitError(f"--n must be at least 1, got {n}")
    cfg = scene_config(size)
    shares = parse_split(split)
    root = Path(out)
    (root / "images").mkdir(parents=True, exist_ok=True)
    splits = assign_splits(n, seed, shares) if shares else ["scenes"] * n
    files = {name: (root / f"{name}.jsonl").open("w", encoding="utf-8") for name in dict.fromkeys(splits)}
    counts: dict[str, int] = dict.fromkeys(files, 0)
    try:
        for i in range(n):
            record, image = make_scene(seed, i, cfg)
            record["image"] = f"images/{record['id']}.png"
            image.save(root / record["image"], compress_level=1)
            files[splits[i]].write(json.dumps(record) + "\n")
            counts[splits[i]] += 1
            if on_scene is not None:
                on_scene(i)
    finally:
        for f in files.values():
            f.close()
    manifest = {
        "source": SOURCE,
        "n": n,
        "seed": seed,
        "size": size if isinstance(size, str) else "custom",
        "config": asdict(cfg),
        "splits": {name: {"file": f"{name}.jsonl", "count": counts[name]} for name in files},
    }
    (root / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return manifest
