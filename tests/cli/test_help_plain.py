"""Every command's ``--help`` reads as plain text: the docstrings it comes from mark code with doubled
backquotes (reST), which the help showed as they are (``fetch``, ``--resume``)."""

from __future__ import annotations

from typing import Any

import typer
from typer.testing import CliRunner

from tracebridge.cli import app


def _paths(cmd: Any, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    if getattr(cmd, "commands", None):  # a group (typer carries its own click: no isinstance on click's)
        return [p for name, sub in sorted(cmd.commands.items()) for p in _paths(sub, (*path, name))]
    return [path]


def test_no_help_shows_doubled_backquotes() -> None:
    paths = _paths(typer.main.get_command(app))
    assert len(paths) > 40 and ("pull",) in paths and ("feedback", "mapping", "set") in paths
    runner, shown = CliRunner(), []
    for path in paths:
        res = runner.invoke(app, [*path, "--help"])
        assert res.exit_code == 0, (path, res.output)
        shown += [" ".join(path)] if "``" in res.output else []
    assert not shown, f"--help of {shown} shows doubled backquotes"


def test_group_list_shows_each_command_line_unbroken() -> None:
    """The command list wraps each command's first paragraph at the terminal's width, not at the
    docstring's own line breaks (``train``'s breaks after "exit 1 when a")."""
    res = CliRunner().invoke(app, ["--help"], terminal_width=400, env={"COLUMNS": "400"})
    assert res.exit_code == 0, res.output
    line = next(x for x in res.output.splitlines() if x.strip(" │").startswith("train "))
    assert "exit 1 when a trial fails." in line, line


def test_every_option_and_argument_has_a_help_text() -> None:
    """An option with no help text is a flag ``--help`` lists but does not explain (``config show --json``,
    ``feedback chunks record --run-id``/``--batch-id``, ``feedback mapping set``'s emoji had none)."""
    root = typer.main.get_command(app)
    bare = []
    for path in _paths(root):
        cmd = root
        for name in path:
            cmd = cmd.commands[name]
        bare += [f"{' '.join(path)} {p.opts[0] if p.opts else p.name}" for p in cmd.params
                 if not (getattr(p, "help", None) or "").strip()]
    assert not bare, f"no help text: {bare}"


def test_a_command_help_wraps_its_paragraphs_at_the_terminal_width() -> None:
    """Rich help kept the docstring's own line breaks after the first paragraph: ``collect --help`` broke
    "exits 1" / "when a check" and "an `--out` it" / "refuses" mid-sentence, however wide the terminal."""
    for path, words in ((["collect"], "success rate); exits 1 when a check of the config's"),
                        (["validate"], "a percentage outside 0..100 or NaN made a check"),
                        (["feedback", "labels"], None)):
        res = CliRunner().invoke(app, [*path, "--help"], terminal_width=400, env={"COLUMNS": "400"})
        assert res.exit_code == 0, res.output
        text = [x.strip(" │") for x in res.output.splitlines()]
        usage = text.index(next(x for x in text if x.startswith("Usage:")))
        prose = text[usage + 1:text.index(next(x for x in text if x.startswith("╭")))]
        paragraphs = [p for p in "\n".join(prose).split("\n\n") if p.strip()]
        short = [ln for p in paragraphs for ln in p.strip("\n").split("\n")[:-1] if len(ln) < 300]
        assert not short, (path, short)  # a line that ends a paragraph's line early: the docstring's own break
        assert words is None or any(words in p for p in paragraphs), (path, paragraphs)
