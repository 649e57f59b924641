"""groundkit works from an installed wheel (grammars are package data), with a third-party plugin."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest
from conftest import REPO

CORE_DEPS = ["lark", "regex", "pluggy", "numpy", "pillow", "typer", "rich", "scipy", "pycocotools", "pyyaml"]  # no torch: the CLI core must not need it


@pytest.mark.slow
def test_wheel_in_a_fresh_venv_composes_grammars_and_loads_the_example_plugin(tmp_path):
    dist = tmp_path / "dist"
    # build from copies: a build writes egg-info/build folders that must not land in the checkout
    skip = shutil.ignore_patterns(".venv", ".git", "build", "dist", "*.egg-info", "demo-output", ".hypothesis", "__pycache__")
    shutil.copytree(REPO, tmp_path / "src-copy", ignore=skip)
    for project in (tmp_path / "src-copy", tmp_path / "src-copy" / "examples" / "groundkit-line"):
        subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(dist), str(project)],
            check=True, cwd=tmp_path, capture_output=True,
        )
    wheels = sorted(str(p) for p in dist.glob("*.whl"))
    assert len(wheels) == 2, wheels
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, *CORE_DEPS], check=True, capture_output=True)
    subprocess.run([*pip, "--no-deps", *wheels], check=True, capture_output=True)
    exe = str(venv / "bin" / "groundkit")

    def run(*args: str, stdin: str | None = None) -> str:
        result = subprocess.run([exe, *args], cwd=tmp_path, capture_output=True, text=True, input=stdin)
        assert result.returncode == 0, result.stderr
        return result.stdout

    grammar = run("grammar", "--dialect", "groundkit", "--types", "point,box")
    assert "grounding: point | box" in grammar and 'point: "<point"' in grammar
    plugins = json.loads(run("plugins", "--json"))
    origins = {p["name"]: p["origin"] for p in plugins["plugins"]}
    assert origins["point"] == "builtin" and origins["line"] == "groundkit-line", origins
    assert plugins["failures"] == []
    text = '<think><line label="rope">[(1, 2), (3, 4)]</line></think><answer>1</answer>'
    trace = json.loads(run("parse", "-", stdin=text))
    assert trace["think"][0]["grounding"]["type"] == "line"
    for dialect in ("treevgr", "qwen2vl", "qwen-json", "molmo"):
        assert "grounding:" in run("grammar", "--dialect", dialect)
