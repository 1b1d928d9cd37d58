"""A store that refuses the credentials (a 403) on the sweep jobs' storage reads and writes: each error names
the operation, the URI and where the credentials came from. Before, ``read_text``, ``exists``, ``put_text``, the
report push and the write probe said only "Forbidden" (or raised a bare PermissionError), and the bundle fetch
and listings named no credential source. Against moto's S3 server checking credentials (it knows none)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.export.conftest import aws_env, moto_server
from tests.report.test_report import small_report, trials
from tracebridge.export.config import RetryConfig, StorageConfig
from tracebridge.export.storage import StorageError
from tracebridge.sweep import storage as st
from tracebridge.sweep.config import SweepConfig
from tracebridge.sweep.publish import ReportNotPushed, publish_report, storage_problem
from tracebridge.sweep.reeval import final_checkpoints

ROOT = Path(__file__).resolve().parents[2]
CREDS = "credentials used: the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY), access key id ending 'NOWN'"
ONCE = StorageConfig(retry=RetryConfig(attempts=1))


@pytest.fixture(scope="module")
def strict_url() -> Iterator[str]:
    with moto_server({"INITIAL_NO_AUTH_ACTION_COUNT": "0"}) as url:
        yield url


@pytest.fixture
def strict_s3(strict_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """moto checking credentials, and a key it does not know in the environment."""
    aws_env(monkeypatch, strict_url, "AKIAUNKNOWN", "wrong")
    return strict_url


def _refusal(call, what: str, uri: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(StorageError) as err:
        call()
    msg = str(err.value)
    assert msg.startswith(f"{what} {uri}") and "failed:" in msg and CREDS in msg, msg


@pytest.mark.usefixtures("strict_s3")
def test_sweep_storage_calls_name_the_operation_uri_and_credential_source(tmp_path: Path) -> None:
    rep = "s3://tb-b/reports/sw-1"
    _refusal(lambda: st.read_text(f"{rep}/manifest.json", ONCE), "read of", f"{rep}/manifest.json")
    _refusal(lambda: st.exists(f"{rep}/manifest.json", ONCE), "look-up of", f"{rep}/manifest.json")
    _refusal(lambda: st.put_text("s3://tb-b/sweeps/sw-1.json", "{}", ONCE), "write of", "s3://tb-b/sweeps/sw-1.json")
    _refusal(lambda: st.list_names("s3://tb-b/reports", ONCE), "listing of", "s3://tb-b/reports")
    _refusal(lambda: st.get_dir(rep, tmp_path / "got", ONCE), "copy from", rep)
    _refusal(lambda: st.read_bundle_manifest("s3://tb-b/bundles", ONCE), "look-up of", "s3://tb-b/bundles/manifest.json")
    _refusal(lambda: st.ensure_bundle("s3://tb-b/bundles", tmp_path / "cache", None, ONCE), "fetch from",
             "s3://tb-b/bundles")
    _refusal(lambda: final_checkpoints("s3://tb-b/st/sw-1", ONCE), "look-up of the checkpoints under", "s3://tb-b/st/sw-1")
    _refusal(lambda: st.put_dir(small_report(tmp_path, tmp_path / "r"), rep, ONCE), "copy to", rep)


@pytest.mark.usefixtures("strict_s3")
def test_report_push_and_write_probe_name_the_credential_source(tmp_path: Path) -> None:
    cfg = SweepConfig(storage="s3://tb-b/st", storage_io=ONCE)
    cfg.push.attempts = 1
    problem = storage_problem(cfg)
    assert problem is not None and problem[1] == 2
    assert "write probe s3://tb-b/st/.write-probe-" in problem[0] and CREDS in problem[0], problem
    with pytest.raises(ReportNotPushed) as err:
        publish_report(trials(tmp_path / "t", uplift=20), cfg, "sw-1", "b" * 64, {"verifier": {"eval": {"n_boot": 20}}},
                       1.0, tmp_path / "report")
    assert "push of the report to s3://tb-b/st/reports/sw-1 failed:" in str(err.value) and CREDS in str(err.value)


def test_sweep_job_bundle_fetch_refused(strict_s3: str, tmp_path: Path) -> None:
    """``jobs/sweep.py`` stops before Ray starts (exit 2), its summary naming the fetch, the URI and the credentials."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")} | {"LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    res = subprocess.run([sys.executable, "jobs/sweep.py", "configs/sweep/smoke.yaml", "bundle=s3://tb-b/bundles",
                          f"storage={tmp_path / 'st'}", f"work_dir={tmp_path / 'work'}", "storage_io.retry.attempts=1"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert res.returncode == 2, res.stderr[-3000:]
    summary = json.loads(res.stdout.strip().splitlines()[-1])
    assert "fetch from s3://tb-b/bundles failed" in summary["error"] and CREDS in summary["error"], summary
