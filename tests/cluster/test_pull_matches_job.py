"""`pull <submission id>` gives the report of that job, or an error: not while the job runs (what lies
at its report URI then is an earlier attempt's, if anything), not a report whose manifest names
another sweep or bundle than the job's metadata, even though it verifies against its own manifest, and
not a report another attempt of the same sweep wrote (a failed attempt that pushed none). `pull <sweep
id>` gives the latest report of the sweep, naming the attempt that wrote it."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.cluster.test_submit import cli, sweep_args, wait_for
from tracebridge.cli import app

pytestmark = pytest.mark.cluster


@pytest.fixture(autouse=True)
def _in_root(monkeypatch):
    from tests.cluster.test_submit import ROOT

    monkeypatch.chdir(ROOT)


def test_pull_by_id_refuses_a_running_job_and_another_sweeps_report(ray_head, smoke_storage, tmp_path):
    from tracebridge.cluster.client import connect, submit

    y = ray_head["yaml"]
    code, smoke = cli("submit", *sweep_args(smoke_storage), "--cluster", y, "--keep", "--wait",
                      "--out", str(tmp_path / "smoke"))
    assert code == 0, smoke
    report = Path(smoke["report_uri"])  # a real, verified report of the smoke sweep
    # a job whose metadata names another sweep and bundle but points at that report, still running
    sub_id = f"other-{uuid.uuid4().hex[:8]}"
    client = connect(ray_head["info"].address, ray_head["token"])
    meta = {"tracebridge": "sweep", "sweep_id": "other-sweep", "bundle_id": "0" * 64, "attempt": "2",
            "report_uri": str(report)}
    assert submit(client, f"{sys.executable} -c 'import time; time.sleep(300)'", {}, sub_id, meta, ray_head["cfg"])
    try:
        res = CliRunner().invoke(app, ["pull", sub_id, "--cluster", y, "--out", str(tmp_path / "r"), "--json"])
        assert res.exit_code == 1, res.output  # before: 0, "report verified"
        assert "its report is not pushed yet" in res.stderr
    finally:
        client.stop_job(sub_id)
    wait_for(lambda: cli("status", sub_id, "--cluster", y)[1]["status"] == "STOPPED", what="STOPPED")

    code, pulled = cli("pull", sub_id, "--cluster", y, "--out", str(tmp_path / "r"))
    assert code == 1 and pulled["report_html"] is None, pulled  # before: 0 with no problem
    assert any(f"manifest.json:sweep_id: {smoke['sweep_id']} is not the expected other-sweep" in p
               for p in pulled["problems"]), pulled
    assert any(":bundle_id: " in p for p in pulled["problems"])
    assert not (tmp_path / "r" / "other-sweep").exists()  # nothing swapped in
    # the job's own report still pulls, stamped by that job
    code, ok = cli("pull", smoke["submission_id"], "--cluster", y, "--out", str(tmp_path / "r"))
    assert code == 0 and ok["problems"] == [] and ok["written_by"] == smoke["submission_id"], ok


def test_pull_of_a_failed_attempt_refuses_the_earlier_attempts_report(ray_head, tmp_path):
    """Attempt a1 pushed its report; a2 failed before pushing one, so a1's still lies at the sweep's report URI
    (the manifest-level checks are in test_pull_attempt.py; here the jobs and `pull` as the user runs it)."""
    from tests.cluster.test_pull_attempt import report
    from tracebridge.cluster.client import connect, submit

    y = ray_head["yaml"]
    sid = f"attempts-{uuid.uuid4().hex[:12]}"
    src = report(tmp_path, "reports", f"{sid}-a1", sweep=sid)
    client = connect(ray_head["info"].address, ray_head["token"])
    for attempt, code in (("1", 0), ("2", 1)):
        meta = {"tracebridge": "sweep", "sweep_id": sid, "bundle_id": "b" * 64, "attempt": attempt,
                "report_uri": str(src)}
        assert submit(client, f"{sys.executable} -c 'raise SystemExit({code})'", {}, f"{sid}-a{attempt}", meta,
                      ray_head["cfg"])
    wait_for(lambda: cli("status", f"{sid}-a2", "--cluster", y)[1]["status"] == "FAILED", what="FAILED")

    code, res = cli("pull", f"{sid}-a2", "--cluster", y, "--out", str(tmp_path / "r"))
    assert code == 1 and res["report_html"] is None, res  # before: 0, a1's report "verified" as a2's
    assert any(f"manifest.json:submission_id: written by {sid}-a1, not by {sid}-a2" in p for p in res["problems"])
    assert not (tmp_path / "r" / sid).exists()
    wait_for(lambda: cli("status", f"{sid}-a1", "--cluster", y)[1]["status"] == "SUCCEEDED", what="SUCCEEDED")
    code, ok = cli("pull", f"{sid}-a1", "--cluster", y, "--out", str(tmp_path / "r"))
    assert code == 0 and ok["written_by"] == f"{sid}-a1", ok
    # by sweep id: the latest report of its attempts, naming the one that wrote it
    code, latest = cli("pull", sid, "--cluster", y, "--out", str(tmp_path / "latest"))
    assert code == 0 and latest["problems"] == [] and latest["written_by"] == f"{sid}-a1", latest
    assert Path(latest["path"]) == tmp_path / "latest" / sid
