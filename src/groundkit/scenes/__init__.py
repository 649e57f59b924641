"""Procedural scenes with exact ground truth: the embedded default data of groundkit.

``generate_scenes(out, n, seed)`` writes pictures and ground-truth JSONL (counting and
spatial-relation questions, per-object COCO RLE masks, boxes, interior points).
"""

from groundkit.scenes.compose import ObjectSpec, PlacedObject, interior_point
from groundkit.scenes.generate import (
    SIZES,
    SceneConfig,
    assign_splits,
    generate_scenes,
    make_scene,
    parse_split,
    scene_config,
)
from groundkit.scenes.shapes import COLORS, SHAPES

__all__ = [
    "COLORS", "SHAPES", "SIZES", "ObjectSpec", "PlacedObject", "SceneConfig", "assign_splits", "generate_scenes",
    "interior_point", "make_scene", "parse_split", "scene_config",
]
