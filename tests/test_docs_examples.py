"""Every ```python block of README.md and docs/*.md runs as written, so the docs cannot rot.

Each block runs with ``exec`` in a fresh namespace, in a temporary working directory, with
``OMP_NUM_THREADS=1``. Blocks define their own inputs; none may assume a name defined
elsewhere. A block that cannot run here is marked by the line right before its fence,
``<!-- example: not run (reason) -->``, and is skipped with that reason.
"""

from __future__ import annotations

import linecache
import re
import sys
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```python[ \t]*$")
NOT_RUN = re.compile(r"^<!--\s*example:\s*not run\s*\((.*)\)\s*-->\s*$")


def python_blocks(path: Path) -> list[tuple[int, str, str | None]]:
    """(line of the fence, code, skip reason or None) for each ```python block of ``path``."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[tuple[int, str, str | None]] = []
    i = 0
    while i < len(lines):
        if FENCE.match(lines[i]):
            start = i
            marker = NOT_RUN.match(lines[i - 1].strip()) if i > 0 else None
            i += 1
            body: list[str] = []
            while i < len(lines) and not lines[i].startswith("```"):
                body.append(lines[i])
                i += 1
            assert i < len(lines), f"{path.name}:{start + 1}: unclosed ```python block"
            blocks.append((start + 1, "\n".join(body) + "\n", marker.group(1) if marker else None))
        i += 1
    return blocks


CASES = [
    pytest.param(path, line, code, reason, id=f"{path.relative_to(ROOT)}:{line}")
    for path in DOCS
    for line, code, reason in python_blocks(path)
]


def test_the_docs_have_python_examples_to_run() -> None:
    assert len(CASES) >= 20
    names = {case.values[0].name for case in CASES}
    assert {"README.md", "plugins.md", "rewards.md", "decoding.md"} <= names


def test_every_python_fence_is_one_the_test_runs() -> None:
    """A ```py / ```python3 / ```python title fence would escape the test: the docs use ```python only."""
    odd = [f"{path.name}:{n}: {line.strip()}" for path in DOCS
           for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
           if line.lstrip().startswith("```py") and not FENCE.match(line)]
    assert odd == []


def test_a_not_run_marker_is_read_only_from_the_line_before_the_fence(tmp_path: Path) -> None:
    doc = tmp_path / "x.md"
    doc.write_text("<!-- example: not run (needs a GPU) -->\n```python\nx = 1\n```\n\n"
                   "<!-- example: not run (far away) -->\n\n```python\ny = 2\n```\n")
    assert python_blocks(doc) == [(2, "x = 1\n", "needs a GPU"), (8, "y = 2\n", None)]


@pytest.mark.parametrize(("path", "line", "code", "reason"), CASES)
def test_doc_example_runs_as_written(
    path: Path, line: int, code: str, reason: str | None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if reason is not None:
        assert reason.strip(), f"{path.name}:{line}: a not-run marker must give its reason"
        pytest.skip(reason.strip())
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    # A fresh module, as if the block were a file of its own (dataclasses look their module up).
    module = types.ModuleType(f"doc_example_{path.stem}_{line}")
    monkeypatch.setitem(sys.modules, module.__name__, module)
    filename = f"{path.relative_to(ROOT)}:{line}"
    linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)  # tracebacks show the block
    exec(compile(code, filename, "exec", dont_inherit=True), module.__dict__)
