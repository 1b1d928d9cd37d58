"""An S3 endpoint that accepts connections and never answers: each request is bounded by
``request_timeout_s`` and tried once per ``retry.attempts``. botocore (5 attempts, 60 s reads) and s3fs
(5 tries around each) used to retry it silently, so a push with ``retry.attempts=1`` hung for many
minutes instead of exiting 3."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tracebridge.cli import app
from tracebridge.export.config import RetryConfig, StorageConfig
from tracebridge.export.pipeline import export_traces
from tracebridge.export.push import push_bundle
from tracebridge.export.storage import StorageUnreachable, open_fs


@contextmanager
def silent_server() -> Iterator[tuple[str, list[socket.socket]]]:
    """An endpoint on 127.0.0.1 that accepts connections and never answers, and the connections it
    accepted (a client opens one per try of a request)."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(64)
    conns: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                conns.append(srv.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{srv.getsockname()[1]}", conns
    finally:
        srv.close()
        for c in conns:
            c.close()


@pytest.fixture
def silent_endpoint() -> Iterator[str]:
    with silent_server() as (url, _):
        yield url


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for k, v in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)


def test_a_silent_s3_endpoint_fails_the_try_within_the_timeout(silent_endpoint: str, aws_env: None,
                                                              mixed_traces: Path, tmp_path: Path) -> None:
    res = export_traces(mixed_traces, tmp_path / "bundles")
    cfg = StorageConfig(s3_endpoint_url=silent_endpoint, request_timeout_s=0.5,
                        retry=RetryConfig(attempts=2, backoff_s=0))
    t = time.monotonic()
    with pytest.raises(StorageUnreachable, match="after 2 attempt"):
        push_bundle(res.path, "s3://bucket/bundles", cfg)
    assert time.monotonic() - t < 6
    fs, _ = open_fs("s3://bucket/bundles", cfg)
    assert fs.retries == 1


def test_cli_fetch_from_a_silent_endpoint_exits_3_with_one_json_document(silent_endpoint: str, aws_env: None,
                                                                         tmp_path: Path) -> None:
    r = CliRunner().invoke(app, ["fetch", "s3://bucket/bundles", "--out", str(tmp_path / "p"), "--json",
                                 f"s3_endpoint_url={silent_endpoint}", "request_timeout_s=0.5", "retry.attempts=1"])
    assert r.exit_code == 3 and '"exit_code": 3' in r.stdout and "ReadTimeoutError" in r.stdout


def test_request_timeout_must_be_positive() -> None:
    assert StorageConfig(request_timeout_s=0).validate() == ["request_timeout_s=0: must be > 0"]


def test_gs_requests_wait_at_most_request_timeout_s_to_connect_and_per_read() -> None:
    """gcsfs hands ``requests_timeout`` to aiohttp, whose default is 5 min for the whole request; per read,
    not in all, so a large upload is not cut (the read timeout starts once the body is sent). The bound
    against a silent endpoint, through gcsfs: ``tests/sweep/test_arrow_fs.py`` (needs the gcs extra)."""
    opts = StorageConfig(request_timeout_s=3, gs_project="p").fs_options("gs")
    t = opts["requests_timeout"]
    assert (t.sock_connect, t.sock_read, t.total) == (3, 3, None) and opts["project"] == "p"
