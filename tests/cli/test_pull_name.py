"""``tracebridge pull NAME`` (no ``/``) is tried as a submission or sweep id on the cluster, then as a report
folder here. Before, it was only ever a job id: with no head running the error spoke of the head alone, and a
report folder of that name in the current folder could not be pulled without writing ``./NAME``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tracebridge.cli import app


@pytest.fixture
def no_local_head(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The cluster flags of a local head that is not running (its state folder is empty), run from tmp_path."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ray-state").mkdir()
    return ["--cluster", "local", "--cluster-set", f"state_dir={tmp_path / 'ray-state'}"]


def test_a_name_that_is_no_job_and_no_folder_says_both_were_tried(no_local_head: list[str], tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["pull", "sw-1", *no_local_head, "--out", str(tmp_path / "r"), "--json"])
    assert res.exit_code == 2, res.output
    error = json.loads(res.stdout)["error"]
    assert error.startswith("pull sw-1: tried as a job: no local Ray head is running"), error
    assert f"then as a report folder: no such folder {tmp_path / 'sw-1'}" in error, error
    assert "(./sw-1)" in error, error
    assert not (tmp_path / "r").exists()


def test_a_name_that_is_a_report_folder_here_is_pulled(no_local_head: list[str], tmp_path: Path) -> None:
    from tests.report.test_report import trials
    from tracebridge.report import write_report

    write_report(trials(tmp_path / "t", uplift=20), tmp_path / "sw-1", config={"roles": ["verifier"]},
                 wall_s=1.0, n_boot=50)
    res = CliRunner().invoke(app, ["pull", "sw-1", *no_local_head, "--out", str(tmp_path / "r"), "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["problems"] == [] and doc["uri"] == "sw-1", doc
    assert (tmp_path / "r" / "sw-1" / "manifest.json").is_file()
