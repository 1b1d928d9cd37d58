"""``tracebridge pull`` of a storage it cannot open exits 2 naming what is wrong, as ``fetch`` does (README
"Exit codes": a storage URI that cannot be opened is a config to fix). Before, an unknown protocol exited 1
(the code of a report failing its hashes) and a bucket name the S3 client refuses to send a request for
(``bad_bucket!``) was retried as if the storage were down, then exited 3 with the reason cut off."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tracebridge.cli import app


@pytest.fixture
def no_aws(monkeypatch):
    """Credentials that sign nothing real and an endpoint where nothing listens: no request may leave."""
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": "http://127.0.0.1:9"}.items():
        monkeypatch.setenv(key, value)


@pytest.mark.parametrize("source, reason", [
    ("s4://bucket/reports/sw-1", "Protocol not known: s4"),
    ("s3://bad_bucket!/reports/sw-1", 'Invalid bucket name "bad_bucket!"'),
])
def test_pull_of_a_storage_it_cannot_open_exits_2_as_fetch(source, reason, no_aws, tmp_path: Path) -> None:
    tries = ["retry.attempts=2", "retry.backoff_s=0.01"]  # retried, it would end as unreachable (exit 3)
    for cmd in ("fetch", "pull"):
        res = CliRunner().invoke(app, [cmd, source, *tries, "--out", str(tmp_path / cmd), "--json"])
        assert res.exit_code == 2, (cmd, res.exit_code, res.output)
        doc = json.loads(res.stdout)
        assert doc["exit_code"] == 2 and source.split("/")[2] in doc["error"] and reason in doc["error"], (cmd, doc)
    assert not (tmp_path / "pull" / "sw-1").exists()
