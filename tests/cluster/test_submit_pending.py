"""`submit --wait` on a job whose driver cannot start (it asks for a resource no node has) gives up after the
cluster's ``pending_timeout_s``: it asks Ray to stop the job, shows progress while it waits, and exits 1 with what the
driver asked for next to what the cluster has (before: it waited until Ray failed the job after
RAY_JOB_START_TIMEOUT_SECONDS, 15 min, with no hint)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from tests.cluster.test_submit import sweep_args
from tracebridge.cli import app

pytestmark = pytest.mark.cluster


@pytest.fixture(autouse=True)
def _in_root(monkeypatch):
    from tests.cluster.test_submit import ROOT

    monkeypatch.chdir(ROOT)


def test_a_job_that_never_starts_is_stopped_after_pending_timeout_s(ray_head, tmp_path):
    y = ray_head["yaml"]
    res = CliRunner().invoke(app, ["submit", *sweep_args(tmp_path), "--cluster", y, "--keep", "--wait",
                                   "--cluster-set", "entrypoint_resources.tb_absent_resource=1",
                                   "--cluster-set", "pending_timeout_s=4", "--json"])
    assert res.exit_code == 1, res.output
    out = json.loads(res.stdout)
    assert out["never_started"] is True and out["status"] == "PENDING", out
    assert out["requested"] == {"tb_absent_resource": 1.0}
    assert out["cluster_resources"]["CPU"]["total"] > 0 and "tb_absent_resource" not in out["cluster_resources"]
    msg = out["message"]
    assert msg.startswith(f"job {out['submission_id']} never started") and "pending_timeout_s=4" in msg
    assert "no node offers enough tb_absent_resource" in msg and "--resume" in msg
    assert "its stop is requested" in msg
    assert f"{out['submission_id']} PENDING for " in res.stderr  # progress while it waited

    # a bad value is a config error naming the key
    bad = CliRunner().invoke(app, ["submit", *sweep_args(tmp_path), "--cluster", y, "--keep", "--wait",
                                   "--cluster-set", "pending_timeout_s=-1"])
    assert bad.exit_code == 2 and "pending_timeout_s=-1.0: must be >= 0" in bad.stderr
