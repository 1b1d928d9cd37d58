"""Sweep storage against a real S3 API (moto's server on loopback): folders up and down, bundle
manifests read before submit (also through a LATEST pointer), bundles fetched once and verified,
tampered or swapped bundles refused."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

from tracebridge.sweep.storage import (
    ensure_bundle,
    get_dir,
    join,
    put_dir,
    read_bundle_manifest,
)

ROOT = Path(__file__).resolve().parents[2]
BUNDLE = ROOT / "tests" / "data" / "train_views"
BID = json.loads((BUNDLE / "manifest.json").read_text())["bundle_id"]


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    """A bucket on a loopback moto server; credentials only in the environment."""
    import boto3

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([str(Path(sys.executable).with_name("moto_server")), "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_ENDPOINT_URL": url}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        end = time.time() + 30
        while True:
            try:
                urllib.request.urlopen(url, timeout=1)
                break
            except OSError:
                assert time.time() < end and proc.poll() is None, "moto_server did not start"
                time.sleep(0.2)
        bucket = f"tb-{uuid.uuid4().hex[:10]}"
        boto3.client("s3", region_name="us-east-1", endpoint_url=url).create_bucket(Bucket=bucket)
        yield f"s3://{bucket}"
    finally:
        proc.kill()  # moto keeps the buckets in memory, nothing to save: SIGTERM took it ~1 s to stop
        proc.wait(10)
        for k, v in old.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)


def test_folders_round_trip_through_s3(s3, tmp_path):
    src = tmp_path / "src"
    (src / "a" / "b").mkdir(parents=True)
    (src / "a" / "b" / "x.json").write_text('{"x": 1}')
    (src / "top.txt").write_text("hi")
    put_dir(src, join(s3, "reports", "r1"))
    got = get_dir(join(s3, "reports", "r1"), tmp_path / "dst")
    assert (got / "a" / "b" / "x.json").read_text() == '{"x": 1}' and (got / "top.txt").read_text() == "hi"
    with pytest.raises(FileNotFoundError):
        get_dir(join(s3, "reports", "nope"), tmp_path / "nope")


def test_a_changed_endpoint_is_used_by_the_same_process(s3, tmp_path, monkeypatch):
    from tracebridge.sweep.storage import read_text

    put_dir(BUNDLE, join(s3, "bundles", "endpoint"))
    live = os.environ["AWS_ENDPOINT_URL"]
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    monkeypatch.setenv("AWS_ENDPOINT_URL", dead)
    from tracebridge.export.config import RetryConfig, StorageConfig
    from tracebridge.export.storage import StorageUnreachable

    with pytest.raises(StorageUnreachable, match=r"after 1 attempt\(s\): EndpointConnectionError"):
        read_text(join(s3, "bundles", "endpoint", "manifest.json"), StorageConfig(retry=RetryConfig(attempts=1)))
    monkeypatch.setenv("AWS_ENDPOINT_URL", live)  # fixed in the environment: the next call must see it
    assert json.loads(read_text(join(s3, "bundles", "endpoint", "manifest.json")))["bundle_id"] == BID


def test_bundle_fetched_once_verified_and_pinned(s3, tmp_path):
    uri = join(s3, "bundles", "v1")
    put_dir(BUNDLE, uri)
    assert read_bundle_manifest(uri)["bundle_id"] == BID
    path, man = ensure_bundle(uri, tmp_path / "cache", BID)
    assert man["bundle_id"] == BID and path == tmp_path / "cache" / BID
    assert (path / "verifier_sft.jsonl").read_bytes() == (BUNDLE / "verifier_sft.jsonl").read_bytes()
    mtime = (path / "verifier_sft.jsonl").stat().st_mtime_ns
    assert ensure_bundle(uri, tmp_path / "cache", BID)[0] == path  # cached, not fetched again
    assert (path / "verifier_sft.jsonl").stat().st_mtime_ns == mtime
    from tracebridge.train.data import BundleError

    with pytest.raises(BundleError, match="changed after submit"):
        ensure_bundle(uri, tmp_path / "cache", "f" * 64)


def test_latest_pointer_and_tampered_bundle(s3, tmp_path):
    prefix = join(s3, "weekly")
    put_dir(BUNDLE, join(prefix, BID))
    import fsspec

    with fsspec.open(join(prefix, "LATEST"), "w") as fh:
        fh.write(json.dumps({"bundle_id": BID}))
    assert read_bundle_manifest(prefix)["bundle_id"] == BID
    path, _ = ensure_bundle(prefix, tmp_path / "c1")
    assert path.name == BID
    with fsspec.open(join(prefix, BID, "worker_sft.jsonl"), "w") as fh:
        fh.write("{}\n")
    with pytest.raises(ValueError, match="sha256|size"):
        ensure_bundle(prefix, tmp_path / "c2")


def test_local_bundle_verified_in_place(tmp_path):
    path, man = ensure_bundle(str(BUNDLE), tmp_path / "unused")
    assert path == BUNDLE and man["bundle_id"] == BID and not (tmp_path / "unused").exists()
    with pytest.raises(FileNotFoundError):
        read_bundle_manifest(str(tmp_path))
