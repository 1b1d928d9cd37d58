"""Bundle verification (tampering, unsafe paths) and storage: file:// and a real S3 API (moto)."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import orjson
import pytest

from tests.export.conftest import record_pii_run
from tracebridge.curate.config import RedactionConfig
from tracebridge.export.bundle import BundleError, compute_bundle_id, safe_relpath, verify_bundle
from tracebridge.export.config import ExportConfig, StorageConfig
from tracebridge.export.pipeline import ExportResult, export_traces
from tracebridge.export.storage import (
    PushRefused,
    StorageError,
    fetch_bundle,
    push_bundle,
    resolve_bundle_dir,
)


@pytest.fixture
def bundle(mixed_traces: Path, tmp_path: Path) -> ExportResult:
    return export_traces(mixed_traces, tmp_path / "bundles")


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _rewrite_manifest(path: Path, fn) -> None:  # type: ignore[no-untyped-def]
    man = orjson.loads((path / "manifest.json").read_bytes())
    fn(man)
    (path / "manifest.json").write_bytes(orjson.dumps(man))


def test_tampered_bundles_are_refused(bundle: ExportResult) -> None:
    p = bundle.path
    view = next((p / "views" / "verifier_sft").glob("*.jsonl"))
    original = view.read_bytes()
    view.write_bytes(original.replace(b"verdict: end", b"verdict: xyz", 1))
    with pytest.raises(BundleError, match="does not match its manifest sha256"):
        verify_bundle(p)
    view.write_bytes(original)
    (p / "views" / "extra.jsonl").write_text('{"messages": []}\n')
    with pytest.raises(BundleError, match="not listed in the manifest"):
        verify_bundle(p)
    (p / "views" / "extra.jsonl").unlink()
    _rewrite_manifest(p, lambda m: m.update(bundle_id="0" * 64))
    with pytest.raises(BundleError, match="bundle_id: does not match"):
        verify_bundle(p)


@pytest.mark.parametrize("bad", ["../outside.jsonl", "/etc/passwd", "views/../../x", "C:/x", "a\\b", ""])
def test_manifest_paths_that_escape_are_refused(bundle: ExportResult, bad: str) -> None:
    with pytest.raises(BundleError):
        safe_relpath(bad)

    def poison(m: dict) -> None:
        m["files"][0]["path"] = bad

    _rewrite_manifest(bundle.path, poison)
    with pytest.raises(BundleError):
        verify_bundle(bundle.path)


def test_bundle_id_is_sha256_over_file_hashes(bundle: ExportResult) -> None:
    man = json.loads((bundle.path / "manifest.json").read_text())
    assert man["bundle_id"] == compute_bundle_id([f["sha256"] for f in man["files"]])
    assert [f["path"] for f in man["files"]] == sorted(f["path"] for f in man["files"])
    assert {v["view"] for v in man["views"]} == {"planner_sft", "worker_sft", "verifier_sft",
                                                 "verifier_pref_pairs", "worker_recovery_cases"}
    assert resolve_bundle_dir(bundle.path.parent) == bundle.path  # an export --out folder with one bundle


def test_train_reads_the_bundle(bundle: ExportResult) -> None:
    from tracebridge.train.data import load_role_data, verify_bundle_dir

    assert verify_bundle_dir(bundle.path)["bundle_id"] == bundle.manifest.bundle_id
    for role in ("planner", "worker", "verifier"):
        d = load_role_data(bundle.path, role)
        c = d.counts()
        assert c["read"] == c["accepted"] and c["quarantined"] == 0, c


def test_file_storage_round_trip_and_latest(bundle: ExportResult, tmp_path: Path) -> None:
    uri = (tmp_path / "store").as_uri()
    res = push_bundle(bundle.path, uri)
    assert res["status"] == "published" and res["files"] == len(bundle.manifest.files)
    assert push_bundle(bundle.path, uri)["status"] == "exists"
    path, man = fetch_bundle(uri, tmp_path / "pulled")  # via LATEST
    assert man.bundle_id == bundle.manifest.bundle_id and _files(path) == _files(bundle.path)
    remote = tmp_path / "store" / man.bundle_id
    view = next(remote.joinpath("views", "planner_sft").glob("*.jsonl"))
    view.write_bytes(view.read_bytes().replace(b'"split":', b'"splat":', 1))
    with pytest.raises(BundleError, match="sha256 does not match"):
        fetch_bundle(f"{uri}/{man.bundle_id}", tmp_path / "pulled2")
    assert not list((tmp_path / "pulled2").glob("[0-9a-f]*"))  # nothing half-fetched is left


def test_unpublished_and_credentialed_uris(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="no published bundle"):
        fetch_bundle((tmp_path / "empty").as_uri(), tmp_path / "x")
    with pytest.raises(StorageError, match="credentials in URIs"):
        fetch_bundle("s3://AKIA:secret@bucket/x", tmp_path / "x")
    assert StorageConfig(options={"secret_access_key": "x"}).validate()
    assert not StorageConfig(options={"use_ssl": "false"}).validate()


def test_s3_push_fetch_round_trip_byte_for_byte(bundle: ExportResult, s3_env: str, tmp_path: Path) -> None:
    uri = f"s3://{s3_env}/tracebridge/bundles"
    res = push_bundle(bundle.path, uri)
    assert res["status"] == "published"
    keys = sorted(o["Key"] for o in boto3.client("s3").list_objects_v2(Bucket=s3_env)["Contents"])
    assert f"tracebridge/bundles/{bundle.manifest.bundle_id}/manifest.json" in keys
    assert "tracebridge/bundles/LATEST" in keys
    path, man = fetch_bundle(uri, tmp_path / "pulled")
    assert _files(path) == _files(bundle.path)
    # a tampered object is refused on fetch
    key = f"tracebridge/bundles/{man.bundle_id}/report.md"
    boto3.client("s3").put_object(Bucket=s3_env, Key=key, Body=b"# forged\n")
    with pytest.raises(BundleError, match="report.md: sha256 does not match"):
        fetch_bundle(f"{uri}/{man.bundle_id}", tmp_path / "pulled2")


def test_s3_fetch_refuses_escaping_manifest(bundle: ExportResult, s3_env: str, tmp_path: Path) -> None:
    uri = f"s3://{s3_env}/evil"
    man = orjson.loads((bundle.path / "manifest.json").read_bytes())
    man["files"][0]["path"] = "../../escaped.txt"
    boto3.client("s3").put_object(Bucket=s3_env, Key="evil/manifest.json", Body=orjson.dumps(man))
    with pytest.raises(BundleError, match="escapes the bundle"):
        fetch_bundle(uri, tmp_path / "pulled")
    assert not (tmp_path / "escaped.txt").exists()


def test_unredacted_push_is_refused(tmp_path: Path, s3_env: str) -> None:
    root = tmp_path / "traces"
    record_pii_run(root)
    res = export_traces(root, tmp_path / "b", ExportConfig(redaction=RedactionConfig(enabled=False)))
    with pytest.raises(PushRefused, match="unredacted"):
        push_bundle(res.path, f"s3://{s3_env}/bundles")
    assert "Contents" not in boto3.client("s3").list_objects_v2(Bucket=s3_env)  # nothing left the host
    # a manifest edited to claim clean governance disagrees with the hashed report.json
    _rewrite_manifest(res.path, lambda m: m["data_governance"].update(pii_scan="clean", passed_both=True))
    with pytest.raises(PushRefused, match="differs from the manifest"):
        push_bundle(res.path, (tmp_path / "store").as_uri())


def test_gs_needs_the_gcs_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    for name in ("gcsfs", "gcsfs.core"):  # as without the gcs extra (dev installs gcsfs: the test skipped)
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(StorageError, match="gcs extra"):
        fetch_bundle("gs://bucket/bundles", tmp_path)


@pytest.fixture
def dead_s3(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """An S3 endpoint where nothing listens (a closed 127.0.0.1 port), with credentials set."""
    import socket

    from s3fs import S3FileSystem

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    for k, v in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
                 "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_MAX_ATTEMPTS": "1"}.items():
        monkeypatch.setenv(k, v)
    yield
    S3FileSystem.clear_instance_cache()  # no later test may meet this dead endpoint in fsspec's cache


def test_push_to_unreachable_storage_retries_then_exits_nonzero(bundle: ExportResult, dead_s3: None) -> None:
    """`tracebridge push` to an S3 endpoint where nothing listens: the configured tries with backoff,
    then exit 3 with the URI and the error; the bundle stays put."""
    from typer.testing import CliRunner

    from tracebridge.cli import app

    before = _files(bundle.path)
    res = CliRunner().invoke(app, ["push", str(bundle.path), "s3://tb-gone/bundles", "retry.attempts=3",
                                   "retry.backoff_s=0.01"])
    assert res.exit_code == 3, res.output  # unreachable: a later try may work (a usage error is 2)
    assert "s3://tb-gone/bundles failed after 3 attempt(s): EndpointConnectionError" in res.stderr
    assert _files(bundle.path) == before


def test_fetch_from_unreachable_storage_retries_then_exits_3(dead_s3: None, tmp_path: Path) -> None:
    """`tracebridge fetch` from that endpoint: the same tries, then exit 3 naming the URI, no traceback
    (it was an uncaught botocore error, exit 1) and nothing written."""
    from typer.testing import CliRunner

    from tracebridge.cli import app

    res = CliRunner().invoke(app, ["fetch", "s3://tb-gone/bundles", "retry.attempts=2", "retry.backoff_s=0.01",
                                   "--out", str(tmp_path / "pulled")])
    assert res.exception is None or isinstance(res.exception, SystemExit), res.exception
    assert res.exit_code == 3, res.output
    assert "fetch from s3://tb-gone/bundles failed after 2 attempt(s): EndpointConnectionError" in res.stderr
    assert not (tmp_path / "pulled").exists()
