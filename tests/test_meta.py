"""Meta-tests: every hook is documented and tested; plugins use only the public API; modules stay small."""

from __future__ import annotations

import ast
import inspect
import re
import subprocess

from conftest import REPO

import groundkit
from groundkit import hookspecs
from groundkit.cli import app


def hook_names() -> list[str]:
    return [n for n, f in inspect.getmembers(hookspecs, inspect.isfunction) if hasattr(f, "groundkit_spec")]


def test_every_hook_is_documented_and_tested():
    names = hook_names()
    assert len(names) >= 3
    docs = (REPO / "docs" / "plugins.md").read_text()
    tests = "\n".join(p.read_text() for p in (REPO / "tests").glob("test_*.py"))
    for name in names:
        assert inspect.getdoc(getattr(hookspecs, name)), f"hook {name} has no docstring"
        assert re.search(rf"^### {name}$", docs, re.M), f"hook {name} is not documented in docs/plugins.md"
        assert f"def test_hook_{name}(" in tests, f"hook {name} has no test_hook_{name}"
        assert f"collect_{name.removeprefix('register_')}" in inspect.getsource(groundkit.Registry), name


def test_builtin_plugins_import_only_the_public_api():
    for path in (REPO / "plugins").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("groundkit."):
                raise AssertionError(f"{path.name} imports from {node.module}; use `from groundkit import ...`")
            if isinstance(node, ast.Import):
                for alias in node.names:
                    assert not alias.name.startswith("groundkit."), f"{path.name} imports {alias.name}"


def test_modules_stay_small():
    for path in [*(REPO / "src").rglob("*.py"), *(REPO / "plugins").rglob("*.py")]:
        n = len(path.read_text().splitlines())
        assert n <= 600, f"{path} has {n} lines"


def test_every_command_has_help_with_an_example():
    import typer.main

    group = typer.main.get_command(app)
    for name, command in group.commands.items():
        assert "Example:" in (command.help or ""), f"`groundkit {name}` help has no example"


def test_nothing_refers_to_paths_outside_the_repo_but_shared():
    files = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True).stdout.split()
    if not files:  # not a git checkout (e.g. an unpacked sdist)
        files = [str(p.relative_to(REPO)) for p in REPO.rglob("*") if p.is_file() and ".venv" not in p.parts]
    for rel in files:
        path = REPO / rel
        if path.suffix in {".png", ".jpg", ".whl"} or not path.is_file():
            continue
        text = path.read_text(errors="ignore")
        for bad in ("/" + "work/", "/tmp/" + "groundkit", "/" + "root/"):
            assert bad not in text, f"{rel} refers to {bad}"


def test_readme_and_docs_refer_only_to_documents_inside_the_repo():
    """Users of the package have no ../shared: links and named documents must resolve in the repo."""
    for doc in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]:
        text = doc.read_text(encoding="utf-8")
        targets = re.findall(r"\]\(([^)#\s]+)[^)]*\)", text) + re.findall(r"`((?:\.\./|docs/)[^`\s]*\.md)`", text)
        for target in targets:
            if target.startswith(("http://", "https://")):
                continue
            resolved = next(((base / target).resolve() for base in (doc.parent, REPO) if (base / target).exists()), None)
            assert resolved is not None, f"{doc.relative_to(REPO)} refers to {target}, which is not in the repo"
            assert resolved.is_relative_to(REPO), f"{doc.relative_to(REPO)} refers to {target}, outside the repo"
    assert (REPO / "docs" / "architecture.md").exists()
