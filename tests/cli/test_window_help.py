"""``tracebridge window --help`` names the cluster keys the window sets itself. Before, it said "those
the window sets itself (``_WINDOW_SETS``)": the name of a private constant, in reST quotes."""

from __future__ import annotations

import re

from typer.testing import CliRunner

from tracebridge.cli import app


def test_the_help_names_the_keys_not_the_constant() -> None:
    text = re.sub(r"[\s│]+", " ", CliRunner().invoke(app, ["window", "--help"], env={"COLUMNS": "200"}).stdout)
    assert "_WINDOW_SETS" not in text and "``" not in text.split("Arguments")[0], text
    assert "except those the window sets itself (kind, address, token_file" in text, text
