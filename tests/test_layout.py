"""The package layout shows the architecture: imports run one way between packages, interfaces
sit in the core with the registry, and modules stay small."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "groundkit"
CORE = {"errors", "trace", "frames", "geometry", "registry", "hookspecs", "records", "render", "images", "interfaces"}
# Lower layers first; a package may import (at module level) only from its own layer or below.
LAYERS = [CORE, {"text"}, {"decoding", "rewards"}, {"backbones"}, {"scenes"}, {"training", "synth", "eval"},
          {"experiments"}, {"cli", "demo", "__main__", "__init__"}]


def _unit(path: Path) -> str:
    rel = path.relative_to(SRC).parts
    return rel[0].removesuffix(".py")


def _layer(unit: str) -> int:
    return next(i for i, layer in enumerate(LAYERS) if unit in layer)


def _module_level_imports(tree: ast.Module) -> list[str]:
    """groundkit imports executed at import time (not in functions, not under TYPE_CHECKING)."""
    out: list[str] = []
    for node in tree.body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        for sub in ast.walk(node) if not isinstance(node, (ast.FunctionDef, ast.ClassDef)) else ():
            if isinstance(sub, ast.ImportFrom) and sub.module and sub.module.startswith("groundkit."):
                out.append(sub.module.split(".")[1])
            elif isinstance(sub, ast.ImportFrom) and sub.module == "groundkit":
                out.extend(a.name for a in sub.names)
    return out


def _sources() -> list[Path]:
    return sorted(p for p in SRC.rglob("*.py"))


@pytest.mark.parametrize("path", _sources(), ids=lambda p: str(p.relative_to(SRC)))
def test_module_imports_only_its_layer_or_below(path):
    unit = _unit(path)
    if unit == "__init__" or unit == "grammars":
        return
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for target in _module_level_imports(tree):
        if target == unit or target not in {u for layer in LAYERS for u in layer}:
            continue
        assert _layer(target) <= _layer(unit), f"{path.relative_to(SRC)} imports groundkit.{target} (a higher layer)"


@pytest.mark.parametrize("path", _sources(), ids=lambda p: str(p.relative_to(SRC)))
def test_module_stays_small(path):
    assert len(path.read_text(encoding="utf-8").splitlines()) <= 600
