"""Credentials the object store refuses (a 403: an unknown key, a policy that denies): ``push``, ``fetch`` and
``pull`` exit 2 naming the URI and the variables to check. Before, push and fetch said only "failed: Forbidden"
and pull exited 1, the code of a report that failed its check, with "The AWS Access Key Id you provided does not
exist in our records"."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.export.conftest import moto_server
from tracebridge.cli import app
from tracebridge.export.pipeline import export_traces


@pytest.fixture
def strict_s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """moto's server checking credentials (it knows none: every request is refused, 403), and a key it
    does not know in the environment."""
    with moto_server({"INITIAL_NO_AUTH_ACTION_COUNT": "0"}) as url:
        for k, v in {
            "AWS_ACCESS_KEY_ID": "AKIAUNKNOWN",
            "AWS_SECRET_ACCESS_KEY": "wrong",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": url,
        }.items():
            monkeypatch.setenv(k, v)
        monkeypatch.delenv("AWS_PROFILE", raising=False)
        yield url


def test_refused_credentials_exit_2_saying_what_to_check(
    strict_s3: str, mixed_traces: Path, tmp_path: Path
) -> None:
    bundle = export_traces(mixed_traces, tmp_path / "bundles").path
    for args, uri in (
        (["push", str(bundle), "s3://tb-b/bundles"], "s3://tb-b/bundles"),
        (["fetch", "s3://tb-b/bundles", "--out", str(tmp_path / "f")], "s3://tb-b/bundles"),
        (
            ["pull", "s3://tb-b/reports/sw-1", "--out", str(tmp_path / "p")],
            "s3://tb-b/reports/sw-1",
        ),
    ):
        res = CliRunner().invoke(app, [*args, "--json", "retry.attempts=1"])
        assert res.exit_code == 2, (args, res.output)
        error = json.loads(res.stdout)["error"]
        assert (
            uri in error
            and "check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE)" in error
        ), error
    assert not (tmp_path / "p").exists() or not any((tmp_path / "p").iterdir())
