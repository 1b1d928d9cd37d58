"""``--json`` of ``push``, ``fetch`` and ``pull``: every document carries ``ok`` and ``exit_code`` (before, a
successful push or fetch had neither), every failure an ``error`` (before, pull's exit 1 had none), and every
pull failure its ``uri``, ``problems`` and ``path`` (before, exits 2 and 3 had only ok/error/exit_code)."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.export.conftest import mixed_traces  # noqa: F401  (fixture)
from tests.export.test_storage_misuse import report  # noqa: F401  (fixture)
from tracebridge.cli import app
from tracebridge.export.pipeline import export_traces


def _json(args: list[str], code: int) -> dict:
    res = CliRunner().invoke(app, [*args, "--json"])
    assert res.exit_code == code, res.output
    doc = json.loads(res.stdout)
    assert doc["ok"] is (code == 0) and doc["exit_code"] == code, doc
    assert code == 0 or doc["error"], doc
    return doc


def test_push_and_fetch_json_say_ok_and_exit_code(
    mixed_traces: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    bundle = export_traces(mixed_traces, tmp_path / "bundles").path
    store = (tmp_path / "store").as_uri()
    doc = _json(["push", str(bundle), store], 0)
    assert (
        doc["status"] == "published" and doc["bundle_id"] == bundle.name
    )  # the keys it had are kept
    doc = _json(["fetch", store, "--out", str(tmp_path / "fetched")], 0)
    assert doc["verified"] is True and doc["bundle_id"] == bundle.name
    _json(["fetch", (tmp_path / "nothing").as_uri(), "--out", str(tmp_path / "f2")], 2)


def test_every_pull_failure_names_its_uri_problems_and_error(
    report: Path,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (report / "results.json").write_text("{}")  # fails its hash check: exit 1
    doc = _json(["pull", str(report), "--out", str(tmp_path / "r")], 1)
    assert doc["error"] == doc["problems"][0] and "results.json was modified" in doc["error"], doc
    assert doc["uri"] == str(report) and doc["path"] is None
    empty = tmp_path / "empty"
    empty.mkdir()
    doc = _json(["pull", str(empty), "--out", str(tmp_path / "r")], 2)  # no report there
    assert doc["problems"] == [doc["error"]] and doc["uri"] == str(empty) and doc["path"] is None, (
        doc
    )
    with socket.socket() as s:  # a closed port: refused at once
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    for k, v in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(k, v)
    uri = "s3://bucket/reports/sw-1"
    doc = _json(
        [
            "pull",
            uri,
            "--out",
            str(tmp_path / "r"),
            f"s3_endpoint_url=http://127.0.0.1:{port}",
            "retry.attempts=1",
        ],
        3,
    )
    assert doc["problems"] == [doc["error"]] and doc["uri"] == uri and doc["path"] is None, doc
