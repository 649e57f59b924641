"""Shared fixtures. Tests that need ../shared skip with a clear reason when it is absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# `make test` runs two xdist workers on a 2-core machine: one torch thread each avoids
# oversubscription (which made tensor-heavy tests ~10x slower).
os.environ.setdefault("OMP_NUM_THREADS", "1")

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
QWEN2_TOKENIZER = SHARED / "tokenizers" / "qwen2"


@pytest.fixture(scope="session")
def qwen2_tokenizer_dir() -> Path:
    """The real Qwen2 BPE vocabulary in ../shared (skips when ../shared is absent)."""
    if not (QWEN2_TOKENIZER / "vocab.json").exists():
        pytest.skip(f"../shared/tokenizers/qwen2 not found at {QWEN2_TOKENIZER} (needs the shared folder beside the repo)")
    return QWEN2_TOKENIZER


@pytest.fixture
def fresh_registry():
    """Yield a helper that installs a registry built with extra plugins; restores the default after."""
    from groundkit import build_registry, set_registry

    def install(*extra: tuple[str, object], entry_points: bool = True):
        reg = build_registry(extra, entry_points=entry_points)
        set_registry(reg)
        return reg

    yield install
    set_registry(None)
