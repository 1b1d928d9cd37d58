"""``logs`` speaks ``--json`` like the other cluster commands (it had no such option: exit 2, a usage
error, from a script that passes ``--json`` to each of them), and ``pull`` of a report whose storage
cannot be reached exits 3 with one JSON document (it ended in a traceback, exit 1). No Ray head is
started: a stub Jobs API plays the head."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.cluster.test_unresponsive_head import SHORT, silent, stub  # noqa: F401  (fixtures)
from tracebridge.cli import app
from tracebridge.cluster.submit import pull_report

pytestmark = pytest.mark.timeout(90)


def test_logs_json_on_a_silent_head_exits_3_with_one_document(silent: str) -> None:  # noqa: F811
    for follow in ([], ["--follow"]):
        res = CliRunner().invoke(app, ["logs", "j-a1", *follow, "--json", "--cluster", silent, *SHORT])
        assert res.exit_code == 3, res.output
        doc = json.loads(res.stdout)
        assert doc["ok"] is False and doc["exit_code"] == 3 and "did not answer" in doc["error"]


def test_logs_json_gives_the_log_and_with_follow_the_final_status(stub: Callable[..., str]) -> None:  # noqa: F811
    url = stub("RUNNING", "SUCCEEDED")
    res = CliRunner().invoke(app, ["logs", "j-a1", "--json", "--cluster", url, *SHORT])
    assert res.exit_code == 0 and json.loads(res.stdout) == {"submission_id": "j-a1", "logs": ""}
    res = CliRunner().invoke(app, ["logs", "j-a1", "--follow", "--json", "--cluster", url, *SHORT])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)  # nothing streamed before it: stdout is the one document
    assert doc["status"] == "SUCCEEDED" and doc["logs"].startswith("step 1\n")


def _unreachable(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []

    def refused(uri: str, local: Path) -> Path:
        calls.append(uri)
        raise ConnectionRefusedError(111, "Connection refused")

    monkeypatch.setattr("tracebridge.sweep.storage.get_dir", refused)
    monkeypatch.setattr("tracebridge.export.storage.time.sleep", lambda s: None)
    return calls


def test_pull_of_an_unreachable_report_is_retried_then_says_so(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    calls = _unreachable(monkeypatch)
    res = pull_report("s3://bucket/reports/sw-1", tmp_path / "out")
    assert res["unreachable"] is True and len(calls) == 4 and "after 4 attempt(s)" in res["problems"][0]
    assert not (tmp_path / "out").exists() and list(tmp_path.iterdir()) == []  # no temp folder left


def test_cli_pull_exits_3_with_one_json_document(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _unreachable(monkeypatch)
    res = CliRunner().invoke(app, ["pull", "s3://bucket/reports/sw-1", "--out", str(tmp_path), "--json"])
    assert res.exit_code == 3, res.output
    doc = json.loads(res.stdout)
    assert doc["exit_code"] == 3 and "ConnectionRefusedError" in doc["error"]
