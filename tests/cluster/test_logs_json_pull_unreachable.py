"""``logs`` speaks ``--json`` like the other cluster commands (it had no such option: exit 2, a usage
error, from a script that passes ``--json`` to each of them), and ``pull`` of a report whose storage
cannot be reached exits 3 with one JSON document (it ended in a traceback, exit 1), refused at once (a closed
port) or silent (a socket that accepts and never answers: each request bounded by ``request_timeout_s``, a
key=value override of the storage config as for ``fetch``). No Ray head is started: a stub Jobs API plays
the head."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.cluster.test_unresponsive_head import SHORT, silent, stub  # noqa: F401  (fixtures)
from tests.export.test_storage_timeouts import aws_env, silent_endpoint  # noqa: F401  (fixtures)
from tests.sweep.test_publish import free_port
from tracebridge.cli import app
from tracebridge.cluster.submit import pull_report
from tracebridge.export.config import RetryConfig, StorageConfig

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


def test_pull_of_an_unreachable_report_is_retried_then_says_so(aws_env: None, tmp_path: Path) -> None:  # noqa: F811
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens there: refused at once
    res = pull_report("s3://bucket/reports/sw-1", tmp_path / "out",
                      StorageConfig(s3_endpoint_url=closed, retry=RetryConfig(attempts=4, backoff_s=0)))
    assert res["unreachable"] is True
    assert res["problems"][0].startswith("pull from s3://bucket/reports/sw-1 failed after 4 attempt(s): EndpointConnection")
    assert not (tmp_path / "out").exists() and list(tmp_path.iterdir()) == []  # no temp folder left


def test_cli_pull_from_a_silent_storage_exits_3_with_one_json_document(silent_endpoint: str, aws_env: None,  # noqa: F811
                                                                       tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["pull", "s3://bucket/reports/sw-1", "--out", str(tmp_path), "--json",
                                   f"s3_endpoint_url={silent_endpoint}", "request_timeout_s=0.3", "retry.attempts=2",
                                   "retry.backoff_s=0"])
    assert res.exit_code == 3, res.output
    doc = json.loads(res.stdout)
    assert doc["exit_code"] == 3 and doc["ok"] is False
    assert doc["error"].startswith("pull from s3://bucket/reports/sw-1 failed after 2 attempt(s): ReadTimeoutError")
    res = CliRunner().invoke(app, ["pull", "s3://bucket/reports/sw-1", "--json", "request_timeout_s=0"])
    assert res.exit_code == 2 and "request_timeout_s=0.0: must be > 0" in res.stdout
