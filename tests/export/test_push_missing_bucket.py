"""``push`` to an ``s3://`` bucket that does not exist: said after the whole row scan before (minutes on a big
bundle), by the transfer ("push to URI failed: The specified bucket does not exist"); now one bounded request
before the scan says it (exit 2 naming the URI and the bucket), and the late check stays for a bucket that goes
while the scan runs. Against moto's S3 server on 127.0.0.1 (``s3_env``: a bucket that exists, so the endpoint
and the credentials are right)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from typer.testing import CliRunner

from tracebridge.cli import app
from tracebridge.export.config import StorageConfig
from tracebridge.export.pipeline import ExportResult, export_traces
from tracebridge.export.push import push_bundle
from tracebridge.export.storage import StorageError


@pytest.fixture
def bundle(mixed_traces: Path, tmp_path: Path) -> ExportResult:
    return export_traces(mixed_traces, tmp_path / "bundles")


def test_a_missing_bucket_is_said_before_the_rows_are_scanned(bundle: ExportResult, s3_env: str) -> None:
    missing = f"{s3_env}-missing"
    seen: list[Any] = []
    with pytest.raises(StorageError, match=rf"^s3://{missing}/bundles: the bucket '{missing}' does not exist there"):
        push_bundle(bundle.path, f"s3://{missing}/bundles", StorageConfig(), lambda *a: seen.append(a))
    assert seen == []  # no row was scanned
    r = CliRunner().invoke(app, ["push", str(bundle.path), f"s3://{missing}/bundles", "--json", "retry.attempts=1"])
    doc = json.loads(r.stdout)
    assert r.exit_code == 2 and doc["ok"] is False and doc["exit_code"] == 2, r.output
    assert doc["error"].startswith(f"s3://{missing}/bundles: the bucket '{missing}' does not exist there"), doc
    assert "rows checked" not in r.stderr  # the progress line of the scan never started


def test_a_bucket_removed_during_the_scan_is_still_said_by_the_late_check(bundle: ExportResult, s3_env: str,
                                                                         s3_server: str) -> None:
    s3 = boto3.client("s3", region_name="us-east-1", endpoint_url=s3_server)

    def scan(done: int, total: int, what: str) -> None:  # the early check passed: the bucket goes meanwhile
        if what == "rows checked" and s3_env in {b["Name"] for b in s3.list_buckets()["Buckets"]}:
            s3.delete_bucket(Bucket=s3_env)

    with pytest.raises(StorageError, match=rf"^push to s3://{s3_env}/bundles failed: .*bucket does not exist"):
        push_bundle(bundle.path, f"s3://{s3_env}/bundles", StorageConfig(), scan)
    assert s3_env not in {b["Name"] for b in s3.list_buckets()["Buckets"]}


def test_an_existing_bucket_is_pushed_as_before(bundle: ExportResult, s3_env: str) -> None:
    seen: list[Any] = []
    out = push_bundle(bundle.path, f"s3://{s3_env}/bundles", StorageConfig(), lambda *a: seen.append(a))
    assert out["status"] == "published" and any(a[2] == "rows checked" for a in seen)
