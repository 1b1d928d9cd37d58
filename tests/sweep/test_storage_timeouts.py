"""The sweep's storage calls are bounded as ``tracebridge push``/``fetch`` are (``storage_io``: a
``StorageConfig``): against an S3 endpoint that accepts connections and never answers (a real socket on
127.0.0.1), every read, listing, copy, bundle fetch, write probe and report push fails with
``StorageUnreachable`` naming the URI and the tries, each try one request bounded by
``request_timeout_s``. They used fsspec's defaults (botocore 5 attempts of 60 s reads inside s3fs's 5
retries; an upload waited for "100 Continue" for ever). Against a real S3 API (moto) the same
bounded settings work as before."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.export.test_storage_timeouts import aws_env, silent_endpoint  # noqa: F401  (fixtures)
from tests.report.test_report import trials as fake_trials
from tests.sweep.test_storage import BID, BUNDLE, ROOT, s3  # noqa: F401  (the moto fixture)
from tracebridge.config import ConfigError
from tracebridge.export.config import RetryConfig, StorageConfig
from tracebridge.export.storage import StorageError, StorageUnreachable
from tracebridge.sweep.config import SweepConfig, load_sweep_config
from tracebridge.sweep.publish import (
    STORAGE_UNREACHABLE,
    ReportNotPushed,
    publish_report,
    storage_problem,
)
from tracebridge.sweep.reeval import final_checkpoints
from tracebridge.sweep.storage import (
    ensure_bundle,
    exists,
    get_dir,
    join,
    put_dir,
    read_bundle_manifest,
    read_text,
)

pytestmark = pytest.mark.timeout(120)  # a call that stalls fails the test instead of hanging the suite


def silent_cfg(endpoint: str) -> StorageConfig:
    return StorageConfig(s3_endpoint_url=endpoint, request_timeout_s=0.3, retry=RetryConfig(attempts=2, backoff_s=0))


def test_every_call_on_a_silent_endpoint_fails_after_its_tries(silent_endpoint: str, aws_env: None,  # noqa: F811
                                                               tmp_path: Path, caplog: pytest.LogCaptureFixture
                                                               ) -> None:
    cfg = silent_cfg(silent_endpoint)
    calls = {"read of s3://tb/r/x.json": lambda: read_text("s3://tb/r/x.json", cfg),
             "look-up of s3://tb/r/x.json": lambda: exists("s3://tb/r/x.json", cfg),
             "copy from s3://tb/r": lambda: get_dir("s3://tb/r", tmp_path / "got", cfg),
             "copy to s3://tb/r": lambda: put_dir(BUNDLE, "s3://tb/r", cfg),
             "look-up of s3://tb/bundles/manifest.json": lambda: read_bundle_manifest("s3://tb/bundles", cfg),
             "fetch from s3://tb/bundles": lambda: ensure_bundle("s3://tb/bundles", tmp_path / "cache", cfg=cfg),
             "look-up of the checkpoints under s3://tb/sw": lambda: final_checkpoints("s3://tb/sw", cfg)}
    caplog.set_level(logging.WARNING, logger="tracebridge.export.storage")
    for what, call in calls.items():
        with pytest.raises(StorageUnreachable) as err:
            call()
        assert str(err.value).startswith(f"{what} failed after 2 attempt(s): ReadTimeoutError"), str(err.value)
        assert [r.getMessage() for r in caplog.records if r.getMessage().startswith(f"{what}: attempt 1/2 failed")]
    assert not (tmp_path / "got").exists()


def test_report_push_and_write_probe_on_a_silent_endpoint(silent_endpoint: str, aws_env: None,  # noqa: F811
                                                          tmp_path: Path) -> None:
    cfg = SweepConfig(storage="s3://tb/sweeps", storage_io=silent_cfg(silent_endpoint),
                      push=RetryConfig(attempts=3, backoff_s=0))
    with pytest.raises(ReportNotPushed) as err:  # push.* retries the push, storage_io bounds each request
        publish_report(fake_trials(tmp_path / "t", uplift=20), cfg, "sw1", "b" * 64, {}, 1.0, tmp_path / "r")
    msg = str(err.value)
    assert "push of the report to s3://tb/sweeps/reports/sw1 failed after 3 attempt(s): ReadTimeoutError" in msg
    assert err.value.local_dir == tmp_path / "r" and (tmp_path / "r" / "manifest.json").is_file()
    problem, code = storage_problem(cfg)
    assert problem.startswith("storage=s3://tb/sweeps: cannot write there (StorageUnreachable: write probe s3://tb/")
    assert "after 3 attempt(s)" in problem and code == STORAGE_UNREACHABLE == 3


def test_an_unknown_aws_profile_is_a_storage_error_not_a_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_PROFILE", "tb-no-such-profile")  # the client is made when the filesystem is opened
    with pytest.raises(StorageError, match=r"s3://tb/x.json: cannot open this storage: ProfileNotFound") as err:
        read_text("s3://tb/x.json")
    assert not isinstance(err.value, StorageUnreachable)  # no try would find the profile: exit 2, not 3


def test_the_bounded_settings_work_against_a_real_s3_api(s3: str, tmp_path: Path) -> None:  # noqa: F811
    cfg = load_sweep_config(None, ["bundle=x", "storage_io.request_timeout_s=5", "storage_io.retry.attempts=2"])
    sio = cfg.storage_io
    assert (sio.request_timeout_s, sio.retry.attempts) == (5.0, 2)
    uri = join(s3, "bounded", BID)
    put_dir(BUNDLE, uri, sio)  # endpoint and credentials from the environment (AWS_ENDPOINT_URL, AWS_*)
    assert exists(join(uri, "manifest.json"), sio) and not exists(join(uri, "nope.json"), sio)
    assert json.loads(read_text(join(uri, "manifest.json"), sio))["bundle_id"] == BID
    assert read_bundle_manifest(uri, sio)["bundle_id"] == BID
    got = get_dir(uri, tmp_path / "got", sio)
    assert sorted(p.name for p in got.iterdir()) == sorted(p.name for p in BUNDLE.iterdir() if p.is_file())
    path, man = ensure_bundle(uri, tmp_path / "cache", BID, sio)
    assert man["bundle_id"] == BID and (path / "manifest.json").is_file()
    with pytest.raises(FileNotFoundError):  # missing is permanent: not retried, not "unreachable"
        read_text(join(uri, "nope.json"), sio)


def test_storage_io_keys_are_checked_and_leave_the_sweep_id_alone() -> None:
    from tracebridge.sweep.grid import config_digest

    with pytest.raises(ConfigError) as err:
        load_sweep_config(None, ["bundle=x", "storage_io.request_timeout_s=0", "storage_io.retry.attempts=0"])
    assert "storage_io.request_timeout_s=0.0: must be > 0" in err.value.problems
    assert "storage_io.retry.attempts=0: must be >= 1" in err.value.problems
    a = load_sweep_config(None, ["bundle=x"])
    b = load_sweep_config(None, ["bundle=x", "storage_io.request_timeout_s=5", "storage_io.retry.attempts=9"])
    assert a.storage_io == StorageConfig() and config_digest(a, {}) == config_digest(b, {})


def test_sweep_job_exits_3_when_its_bundle_storage_does_not_answer(silent_endpoint: str,  # noqa: F811
                                                                   tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "AWS_"))}
    env.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1",
               AWS_ENDPOINT_URL=silent_endpoint)  # from the environment, as on a cluster
    res = subprocess.run([sys.executable, "jobs/sweep.py", "configs/sweep/smoke.yaml", "bundle=s3://tb/bundles",
                          f"work_dir={tmp_path}/work", f"storage={tmp_path}/storage",
                          "storage_io.request_timeout_s=0.3", "storage_io.retry.attempts=2",
                          "storage_io.retry.backoff_s=0"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=100, check=False)
    assert res.returncode == 3, res.stderr[-3000:]
    line = "bundle s3://tb/bundles: fetch from s3://tb/bundles failed after 2 attempt(s): ReadTimeoutError"
    assert line in res.stderr
