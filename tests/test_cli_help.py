"""``--help`` without a terminal (CliRunner, pipes): complete, with example lines and defaults uncut."""

from __future__ import annotations

import inspect
import re

import click
import pytest
import typer
from typer.testing import CliRunner

from groundkit.cli import app
from groundkit.cli.app import HELP_WIDTH


def commands(group: click.Command, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], click.Command]]:
    out = [(path, group)]
    for name, sub in getattr(group, "commands", {}).items():
        out += commands(sub, (*path, name))
    return out


ALL = commands(typer.main.get_command(app))


def flat(text: str) -> str:
    return re.sub(r"\s+", " ", text)


def test_every_command_is_covered():
    names = {" ".join(p) for p, _ in ALL}
    assert {"", "score", "eval", "render", "train", "train grpo", "train sft", "synth", "generate"} <= names


@pytest.mark.parametrize(("path", "command"), ALL, ids=[" ".join(p) or "groundkit" for p, _ in ALL])
def test_help_is_complete_without_a_terminal(path, command):
    result = CliRunner().invoke(app, [*path, "--help"], env={"TERMINAL_WIDTH": "", "COLUMNS": ""})
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert "<bool>" not in text and "…" not in text and "│" not in text  # no flag types, no cut text, no panels
    assert max(map(len, text.splitlines())) <= HELP_WIDTH
    doc = inspect.cleandoc(command.help or "")
    examples = [line for line in doc.splitlines() if line.startswith("Example:")]
    if path:
        assert examples, f"groundkit {' '.join(path)} has no example line"
    for line in examples:
        assert line in text, f"example line wrapped or cut: {line!r}"
    for param in command.params:
        if not isinstance(param, click.Option) or param.is_flag or param.default is None or param.show_default is False:
            continue
        default = ",".join(map(str, param.default)) if isinstance(param.default, (list, tuple)) else str(param.default)
        assert f"default: {default}" in flat(text), (param.name, default)
    for param in command.params:
        for opt in param.opts:
            assert opt in text, opt


def test_terminal_width_overrides_the_help_width():
    narrow = CliRunner().invoke(app, ["score", "--help"], env={"TERMINAL_WIDTH": "100"}).stdout
    assert max(map(len, narrow.splitlines())) <= 100
    assert "default: format,answer" in flat(narrow) and "<bool>" not in narrow
