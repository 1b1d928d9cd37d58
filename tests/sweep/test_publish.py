"""Storage unreachable at push time: the report push retries with exponential backoff
(``push.*`` keys), keeps the verified report locally and fails with a message naming the storage
URI, the error and the local path; the jobs turn that into exit code 3. Against a real S3 API
(moto's server on loopback) that is stopped between two pushes, and a closed 127.0.0.1 port."""

from __future__ import annotations

import json
import logging
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.report.test_report import trials as fake_trials
from tracebridge.export.config import RetryConfig
from tracebridge.export.storage import StorageError, retry_io
from tracebridge.report import verify_report
from tracebridge.sweep.config import SweepConfig, load_sweep_config
from tracebridge.sweep.publish import ReportNotPushed, publish_into, publish_report

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def s3_env(monkeypatch):
    """AWS settings in the environment only; botocore's own retries off (ours are under test).
    fsspec caches S3 filesystems per process: dropped after, so no later test meets our dead endpoint."""
    from s3fs import S3FileSystem

    for k, v in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                 "AWS_DEFAULT_REGION": "us-east-1", "AWS_MAX_ATTEMPTS": "1"}.items():
        monkeypatch.setenv(k, v)
    S3FileSystem.clear_instance_cache()
    yield monkeypatch
    S3FileSystem.clear_instance_cache()


def start_moto(port: int) -> subprocess.Popen:
    proc = subprocess.Popen([str(Path(sys.executable).with_name("moto_server")), "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    end = time.time() + 30
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}", timeout=1)
            return proc
        except OSError:
            assert time.time() < end and proc.poll() is None, "moto_server did not start"
            time.sleep(0.2)


def test_report_push_retries_with_backoff_then_keeps_the_report_locally(s3_env, tmp_path, caplog):
    import boto3

    port = free_port()
    s3_env.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    moto = start_moto(port)
    try:
        boto3.client("s3", region_name="us-east-1", endpoint_url=f"http://127.0.0.1:{port}").create_bucket(Bucket="tb-reports")
        cfg = SweepConfig(storage="s3://tb-reports/sweeps", push=RetryConfig(attempts=3, backoff_s=0.05, max_backoff_s=0.08))
        trials = fake_trials(tmp_path / "t", uplift=20)
        ok = publish_report(trials, cfg, "sw1", "b" * 64, {}, 1.0, tmp_path / "r1")
        assert ok["report_uri"] == "s3://tb-reports/sweeps/reports/sw1"
        keys = [o["Key"] for o in boto3.client("s3", region_name="us-east-1", endpoint_url=f"http://127.0.0.1:{port}")
                .list_objects_v2(Bucket="tb-reports")["Contents"]]
        assert "sweeps/reports/sw1/manifest.json" in keys
    finally:
        moto.kill()  # in memory, nothing to save: SIGTERM took it ~1 s to stop
        moto.wait(10)

    caplog.set_level(logging.WARNING, logger="tracebridge.export.storage")
    with pytest.raises(ReportNotPushed) as err:
        publish_report(trials, cfg, "sw2", "b" * 64, {}, 1.0, tmp_path / "r2")
    msg = str(err.value)
    assert "s3://tb-reports/sweeps/reports/sw2" in msg and "after 3 attempt(s)" in msg
    assert "EndpointConnectionError" in msg and str(tmp_path / "r2") in msg
    assert err.value.local_dir == tmp_path / "r2" and verify_report(tmp_path / "r2") == []
    waits = [r.getMessage().rsplit("retrying in ", 1)[1] for r in caplog.records if "retrying in" in r.getMessage()]
    assert waits == ["0.05 s", "0.08 s"]  # doubled, capped at max_backoff_s; no wait after the last try

    summary: dict = {}
    assert publish_into(summary, trials, cfg, "sw3", "b" * 64, {}, 1.0, tmp_path / "r3") is False
    assert summary["report_local"] == str(tmp_path / "r3") and "s3://tb-reports/sweeps/reports/sw3" in summary["report_error"]


def test_closed_port_and_permanent_errors(s3_env):
    s3_env.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")  # nothing listens there
    import fsspec

    fs, _ = fsspec.core.url_to_fs("s3://tb/x", skip_instance_cache=True)
    with pytest.raises(StorageError, match=r"push of x to s3://tb/x failed after 2 attempt\(s\): EndpointConnection"):
        retry_io(lambda: fs.pipe_file("tb/x/a", b"1"), "push of x to s3://tb/x", RetryConfig(attempts=2, backoff_s=0))
    calls = []

    def missing() -> None:
        calls.append(1)
        open("/nonexistent/tb-report")  # noqa: SIM115 - a permanent error: never retried

    with pytest.raises(FileNotFoundError):
        retry_io(missing, "push", RetryConfig(attempts=5, backoff_s=0))
    assert calls == [1]


def test_push_keys_are_config_keys_and_checked():
    cfg = load_sweep_config(None, ["bundle=x", "push.attempts=6", "push.backoff_s=0.5", "push.max_backoff_s=4"])
    assert (cfg.push.attempts, cfg.push.backoff_s, cfg.push.max_backoff_s) == (6, 0.5, 4)
    from tracebridge.config import ConfigError

    with pytest.raises(ConfigError, match=r"push.attempts=0: must be >= 1"):
        load_sweep_config(None, ["bundle=x", "push.attempts=0"])
    from tracebridge.config import load_config
    from tracebridge.export.config import StorageConfig

    assert load_config(StorageConfig, None, ["retry.attempts=2"]).retry.attempts == 2
    with pytest.raises(ConfigError, match=r"retry.backoff_s=-1.0: must be >= 0"):
        load_config(StorageConfig, None, ["retry.backoff_s=-1"])


def test_sweep_id_ignores_push_settings():
    from tracebridge.sweep.grid import config_digest

    a = load_sweep_config(None, ["bundle=x"])
    b = load_sweep_config(None, ["bundle=x", "push.attempts=9"])
    assert config_digest(a, {}) == config_digest(b, {})
    assert json.dumps(a.push.__dict__) != json.dumps(b.push.__dict__)


def test_a_reevaluation_report_uses_the_interval_settings_it_was_given(tmp_path):
    """``jobs/eval.py ... -- eval.n_boot=N eval.ci=C`` re-evaluates the trials with them, but its report computed
    its intervals with the sweep recipes' values (before: the first variant's); it now uses the ones given."""
    cfg = load_sweep_config(None, ["bundle=x", f"storage={tmp_path / 'storage'}"])
    trials = fake_trials(tmp_path / "t", uplift=20)
    recipes = {"baseline": {"eval": {"n_boot": 200, "ci": 0.9}}, "optimized": {"eval": {"n_boot": 200, "ci": 0.9}}}
    for name, overrides, want in (("sweep", None, (200, 0.9)),
                                  ("reeval", ["eval.n_boot=300", "data.eval_split=validation", "eval.ci=0.8"], (300, 0.8))):
        summary: dict = {}
        assert publish_into(summary, trials, cfg, name, "b" * 64, recipes, 1.0, tmp_path / name,
                            eval_overrides=overrides) is True
        results = json.loads((Path(summary["report_uri"]) / "results.json").read_text())
        assert (results["n_boot"], results["ci"]) == want
