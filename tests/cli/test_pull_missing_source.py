"""``tracebridge pull`` of a report URI or folder where nothing is, or of a mistyped URI, is the caller's
mistake: exit 2 naming it, as ``fetch`` exits for a bundle URI where nothing is (README "Exit codes").
Before, pull exited 1, the code of a report that failed its hash check."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tracebridge.cli import app


@pytest.mark.parametrize("form", ["path", "file URI"])
def test_pull_of_a_missing_report_exits_2_as_fetch_does(form: str, tmp_path: Path) -> None:
    missing = tmp_path / "no_such_report"
    source = str(missing) if form == "path" else missing.as_uri()
    for cmd in ("fetch", "pull"):
        res = CliRunner().invoke(app, [cmd, source, "--out", str(tmp_path / cmd), "--json"])
        assert res.exit_code == 2, (cmd, res.exit_code, res.output)
        doc = json.loads(res.stdout)
        assert doc["exit_code"] == 2 and source in doc["error"], (cmd, doc)
    assert "no report there" in doc["error"], doc


def test_pull_of_a_mistyped_uri_exits_2(tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["pull", "s3:/bucket/reports/sw-1", "--out", str(tmp_path / "r"), "--json"])
    assert res.exit_code == 2, res.output
    assert "'s3:' must be followed by '//'" in json.loads(res.stdout)["error"]
    assert not (tmp_path / "r").exists()
