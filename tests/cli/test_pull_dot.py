"""``tracebridge pull ./`` (or ``.``) from inside a report folder puts the report under ``--out`` by the folder's
own name. Before, the name was ``.``: the report replaced the ``--out`` folder itself, and every other report in
it was deleted. A source with no name at all (``/``, ``s3://bucket/x/..``) exits 2 before anything is read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.report.test_report import small_report
from tracebridge.cli import app
from tracebridge.report import verify_report


@pytest.mark.parametrize("source", ["./", "."])
def test_pull_of_the_current_folder_keeps_the_other_reports(
    source: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reports = tmp_path / "reports"
    (reports / "sw-old").mkdir(parents=True)
    (reports / "sw-old" / "notes.txt").write_text("an earlier report's file")
    small_report(tmp_path, tmp_path / "sw-1")
    (tmp_path / "ray-state").mkdir()
    monkeypatch.chdir(tmp_path / "sw-1")
    res = CliRunner().invoke(
        app,
        [
            "pull",
            source,
            "--out",
            str(reports),
            "--json",
            "--cluster-set",
            f"state_dir={tmp_path / 'ray-state'}",
        ],
    )
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["path"] == str(reports / "sw-1")
    assert (reports / "sw-old" / "notes.txt").read_text() == "an earlier report's file"
    assert verify_report(reports / "sw-1") == []


@pytest.mark.parametrize("source", ["/", "s3://bucket/x/.."])
def test_a_source_with_no_folder_name_exits_2(source: str, tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["pull", source, "--out", str(tmp_path / "r"), "--json"])
    assert res.exit_code == 2, res.output
    assert json.loads(res.stdout)["error"].startswith(
        f"pull {source}: no folder name to put its report under --out"
    )
    assert not (tmp_path / "r").exists()


def test_an_out_inside_the_report_folder_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before, the copy of the folder copied its own copy into itself, ~130 levels deep, until the path was
    too long: exit 1 with a 20 kB error (and a large report copied that many times)."""
    small_report(tmp_path, tmp_path / "sw-1")
    monkeypatch.chdir(tmp_path / "sw-1")
    res = CliRunner().invoke(app, ["pull", "./", "--out", "sub", "--json"])
    assert res.exit_code == 2, res.output
    error = json.loads(res.stdout)["error"]
    assert (
        error
        == f"sub/sw-1: inside the report folder {tmp_path / 'sw-1'} it would be pulled from; give an --out outside it"
    )
    assert sorted(p.name for p in (tmp_path / "sw-1").iterdir()) == [
        "manifest.json",
        "report.html",
        "results.json",
    ]
