"""``tracebridge pull`` of a URI that holds no report at its top (a sweep's storage root, with checkpoints
under it) says so from one listing, exit 2, without downloading what lies there. Before, every object
under the URI was downloaded first (200 MB of checkpoints: 3.5 s on a local S3 server), and an object that
cannot be read (an archived checkpoint) turned the mistake into exit 1, "the operation is not valid for the
object's storage class"."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
from typer.testing import CliRunner

from tests.export.conftest import s3_env, s3_server  # noqa: F401  (fixtures)
from tracebridge.cli import app


def test_pull_of_a_storage_root_reads_none_of_its_objects(s3_env: str, tmp_path: Path) -> None:  # noqa: F811
    s3 = boto3.client("s3")
    # archived: a GET of it is refused (InvalidObjectState), so a pull that reads it cannot say "no report"
    s3.put_object(
        Bucket=s3_env,
        Key="sweeps/sw-1/checkpoint_000/model.bin",
        Body=b"w" * 1000,
        StorageClass="GLACIER",
    )
    s3.put_object(Bucket=s3_env, Key="sweeps/reports/sw-1/report.html", Body=b"<html></html>")
    uri = f"s3://{s3_env}/sweeps"
    res = CliRunner().invoke(app, ["pull", uri, "--out", str(tmp_path / "r"), "--json"])
    assert res.exit_code == 2, res.output
    doc = json.loads(res.stdout)
    assert (
        doc["error"] == f"{uri}: no report there (no manifest.json, results.json, report.html)"
    ), doc
    assert not (tmp_path / "r").exists() or not any(
        (tmp_path / "r").iterdir()
    )  # nothing written, no temp left


def test_pull_of_a_report_under_folder_markers(s3_env: str, tmp_path: Path) -> None:  # noqa: F811
    """Keys ending in '/' (the S3 console's "Create folder", rclone, Hadoop) are no files: before, the pull
    stopped at them, exit 1 "object key: '' is not a relative POSIX path"."""
    from tests.report.test_report import small_report
    from tracebridge.report import verify_report

    report = tmp_path / "sw-1"
    small_report(tmp_path, report)
    s3 = boto3.client("s3")
    for key in ("reports/", "reports/sw-1/", "reports/sw-1/extra/"):
        s3.put_object(Bucket=s3_env, Key=key, Body=b"")
    for f in report.iterdir():
        s3.put_object(Bucket=s3_env, Key=f"reports/sw-1/{f.name}", Body=f.read_bytes())
    res = CliRunner().invoke(
        app, ["pull", f"s3://{s3_env}/reports/sw-1", "--out", str(tmp_path / "r"), "--json"]
    )
    assert res.exit_code == 0, res.output
    assert verify_report(tmp_path / "r" / "sw-1") == []
