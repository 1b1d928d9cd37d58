"""The storage commands name their storage YAML the same way: ``push``, ``fetch`` and ``pull`` take
``--config``. Before, ``pull`` alone took ``--storage-config`` (and refused ``--config``); that spelling
still works, hidden from ``--help``, so scripts using it do not break, and giving both is refused."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tracebridge.cli import app


@pytest.fixture
def report_dir(tmp_path: Path) -> Path:
    from tests.report.test_report import trials
    from tracebridge.report import write_report

    write_report(trials(tmp_path / "t", uplift=20), tmp_path / "sw-1", config={"roles": ["verifier"]},
                 wall_s=1.0, n_boot=50)
    return tmp_path / "sw-1"


def _pull(report_dir: Path, out: Path, *flags: str) -> object:
    return CliRunner().invoke(app, ["pull", str(report_dir), "--out", str(out), "--json", *flags])


@pytest.mark.parametrize("flag", ["--config", "--storage-config"])
def test_pull_reads_its_storage_yaml_under_either_name(flag: str, report_dir: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("request_timeout_s: 5\nretri: {}\n")
    res = _pull(report_dir, tmp_path / "r0", flag, str(bad))
    assert res.exit_code == 2 and "retri" in json.loads(res.stdout)["error"], res.output  # the file was read
    good = tmp_path / "good.yaml"
    good.write_text("request_timeout_s: 5\n")
    res = _pull(report_dir, tmp_path / "r1", flag, str(good))
    assert res.exit_code == 0 and json.loads(res.stdout)["problems"] == [], res.output


def test_pull_refuses_both_names_at_once(report_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text("request_timeout_s: 5\n")
    res = _pull(report_dir, tmp_path / "r", "--config", str(tmp_path / "s.yaml"), "--storage-config",
                str(tmp_path / "s.yaml"))
    assert res.exit_code == 2, res.output
    assert "--storage-config is the old name of --config" in json.loads(res.stdout)["error"]
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("command", ["push", "fetch", "pull"])
def test_every_storage_command_shows_config_and_not_the_old_name(command: str) -> None:
    res = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "200", "TERM": "dumb"})
    text = re.sub(r"\x1b\[[0-9;]*m", "", res.output)
    assert res.exit_code == 0 and "--config" in text and "--storage-config" not in text, text
