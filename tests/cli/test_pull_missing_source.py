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


def test_pull_of_a_folder_holding_no_report_exits_2(tmp_path: Path) -> None:
    """A folder that exists but holds no report (empty, or other files) exited 1 with "manifest.json: missing",
    the code of a report that failed its check, and a ``path`` naming a folder never created."""
    for name, files in (("empty", {}), ("notes", {"notes.txt": "x"})):
        src = tmp_path / name
        src.mkdir()
        for f, text in files.items():
            (src / f).write_text(text)
        res = CliRunner().invoke(app, ["pull", str(src), "--out", str(tmp_path / "r"), "--json"])
        assert res.exit_code == 2, res.output
        doc = json.loads(res.stdout)
        assert doc["ok"] is False and doc["exit_code"] == 2 and doc["error"] == f"{src}: no report there (no manifest.json, results.json, report.html)"
        assert not (tmp_path / "r" / name).exists()
    res = CliRunner().invoke(app, ["pull", str(tmp_path / "empty"), "--out", str(tmp_path / "r")])
    assert res.exit_code == 2 and res.stdout == "" and res.stderr.startswith("error: "), res.output


def test_a_pull_that_fails_its_check_says_so_in_the_shape_of_every_error(tmp_path: Path) -> None:
    """Exit 1 (a report that does not verify): its JSON carries ``ok`` and ``exit_code`` as every command's
    error JSON does, ``path`` is None (nothing was written), and the text goes to stderr as ``error: ...``."""
    from tests.report.test_report import trials
    from tracebridge.report import write_report

    src = tmp_path / "store" / "r1"
    write_report(trials(tmp_path / "t", uplift=20), src, config={"roles": ["verifier"]}, wall_s=1.0, n_boot=50)
    (src / "results.json").write_text("{}")
    res = CliRunner().invoke(app, ["pull", str(src), "--out", str(tmp_path / "r"), "--json"])
    doc = json.loads(res.stdout)
    assert res.exit_code == 1 and doc["ok"] is False and doc["exit_code"] == 1 and doc["path"] is None, doc
    assert doc["problems"] == [f"{src}/manifest.json:files[0].sha256: results.json was modified"]
    res = CliRunner().invoke(app, ["pull", str(src), "--out", str(tmp_path / "r")])
    assert res.exit_code == 1 and res.stdout == "" and res.stderr == f"error: {doc['problems'][0]}\n", res.output
    assert not (tmp_path / "r" / "r1").exists()
