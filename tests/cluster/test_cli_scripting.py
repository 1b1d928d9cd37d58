"""The cluster commands as a script sees them, on the session's local head (tests/ray_fixtures.py; other
tests' jobs may share it): numbers in ``--json`` are numbers (``list`` gave ``"attempt": "1"``); ``submit
--resume`` of a sweep whose latest attempt SUCCEEDED sends nothing and says so (before: a new attempt that
retrained nothing); a sweep with a failed trial says "N finished, M failed" in its job log (before: the
failed trial was counted as finished) and its pushed report lists the failed trial in results.json, and
``submit --wait`` pulls that report of the trials that finished (before: only a SUCCEEDED job's)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.cluster.test_submit import ROOT, cli, sweep_args
from tracebridge.cli import app

pytestmark = pytest.mark.cluster


@pytest.fixture(autouse=True)
def _in_root(monkeypatch):
    monkeypatch.chdir(ROOT)


def test_list_and_status_json_give_numbers_and_resume_of_a_succeeded_sweep_sends_nothing(
        ray_head, smoke_storage, tmp_path):
    y = ray_head["yaml"]
    code, sub = cli("submit", *sweep_args(smoke_storage), "--cluster", y, "--keep", "--wait",
                    "--out", str(tmp_path / "reports"))
    assert code == 0 and sub["status"] == "SUCCEEDED", sub  # or already run by another test of this head
    code, jobs = cli("list", "--cluster", y)
    (job,) = [j for j in jobs if j["sweep_id"] == sub["sweep_id"]]
    assert job["attempt"] == 1 and job["submission_id"] == sub["submission_id"], job
    code, st = cli("status", sub["submission_id"], "--cluster", y)
    assert code == 0 and st["metadata"]["attempt"] == 1 and st["metadata"]["trials"] == 2, st["metadata"]
    code, stop = cli("stop", sub["submission_id"], "--cluster", y)  # a finished job: exit 1, said as errors are
    assert code == 1 and stop["stop_requested"] is False, stop
    assert stop["ok"] is False and stop["exit_code"] == 1 and "was not running" in stop["error"], stop

    res = CliRunner().invoke(app, ["submit", *sweep_args(smoke_storage), "--cluster", y, "--keep", "--resume",
                                   "--json"])
    assert res.exit_code == 0, res.output
    again = json.loads(res.stdout)
    assert again["status"] == "ALREADY_SUCCEEDED" and again["created"] is False, again
    assert again["submission_id"] == sub["submission_id"] and again["attempt"] == 1
    assert f"tracebridge pull {sub['submission_id']}" in again["message"] and "--attempt 2" in again["message"]
    assert "already succeeded" in res.stderr
    code, jobs = cli("list", "--cluster", y)
    assert [j["submission_id"] for j in jobs if j["sweep_id"] == sub["sweep_id"]] == [sub["submission_id"]]

    res = CliRunner().invoke(app, ["submit", *sweep_args(smoke_storage), "--cluster", y, "--resume",
                                   "--attempt", "2", "--json"])
    assert res.exit_code == 2 and "--resume and --attempt 2 conflict" in json.loads(res.stdout)["error"]


def test_a_sweep_with_a_failed_trial_logs_and_reports_it_as_failed(ray_head, tmp_path):
    """Every DPO pair is cut at dpo.max_length=32: the optimized trial fails (its inputs), the baseline
    (SFT only) finishes."""
    y = ray_head["yaml"]
    code, sub = cli("submit", *sweep_args(tmp_path, "overrides.dpo.max_length=32"), "--cluster", y, "--keep",
                    "--wait", "--out", str(tmp_path / "reports"))
    assert code == 1 and sub["status"] == "FAILED", sub
    assert [f["trial_id"] for f in sub["failures"]] == ["verifier-optimized-s0"]
    # the finished trial's report is pulled and verified as a SUCCEEDED job's is (before: left on storage)
    assert sub["report"] == str(tmp_path / "reports" / sub["sweep_id"] / "report.html"), sub
    assert sub["report_problems"] == [] and "storage_unreachable" not in sub, sub
    pulled = json.loads((tmp_path / "reports" / sub["sweep_id"] / "results.json").read_text())
    assert [t["trial_id"] for t in pulled["failed_trials"]] == ["verifier-optimized-s0"]
    assert [t["variant"] for t in pulled["trials"]] == ["baseline"]
    # status says why too (before: Ray's message alone, the tail of the job's log)
    code, st = cli("status", sub["submission_id"], "--cluster", y)
    assert code == 1 and st["status"] == "FAILED" and st["failures"] == sub["failures"], st
    res = CliRunner().invoke(app, ["status", sub["submission_id"], "--cluster", y])
    assert res.exit_code == 1 and "failed trial verifier-optimized-s0: TrialInputError: dpo: all" in res.stderr
    (line,) = res.stdout.splitlines()  # Ray's message (the log's last 20,000 characters) cut to one line
    assert line.startswith(f"{sub['submission_id']}: FAILED  ") and line.endswith(
        f"characters; `tracebridge logs {sub['submission_id']}` prints the log)") and len(line) < 500, line
    log = CliRunner().invoke(app, ["logs", sub["submission_id"], "--cluster", y]).stdout
    assert "trial verifier-optimized-s0 failed: TrialInputError: dpo: all" in log, log[-3000:]
    assert "trial verifier-optimized-s0 finished" not in log
    assert "trial verifier-baseline-s0 finished (" in log
    assert f"sweep {sub['sweep_id']}: 1 of 2 trials finished, 1 failed" in log, log[-3000:]
    results = json.loads((tmp_path / "storage" / "reports" / sub["sweep_id"] / "results.json").read_text())
    assert [t["variant"] for t in results["trials"]] == ["baseline"]
    (failed,) = results["failed_trials"]
    assert (failed["trial_id"], failed["role"], failed["variant"], failed["seed"], failed["status"]) == \
        ("verifier-optimized-s0", "verifier", "optimized", 0, "failed")
    assert failed["reason"].startswith("TrialInputError: dpo: all"), failed
    assert Path(tmp_path / "storage" / "reports" / sub["sweep_id"] / "report.html").read_text().count(
        "verifier-optimized-s0") >= 1
    # it trained SFT before its DPO inputs failed: that time is in the report (GPU time is priced the same way)
    man = json.loads((tmp_path / "storage" / "reports" / sub["sweep_id"] / "manifest.json").read_text())
    assert man["failed_trial_wall_s"] > 0 and man["gpu_hours_failed"] == 0.0, man  # on CPU: no GPU-hours
    assert man["cluster"]["nodes"], man


def test_a_job_that_stops_before_training_says_why_in_submit_json(ray_head, tmp_path):
    """The job cannot create its work_dir on the cluster (a file is in the way; ``submit`` checks no
    cluster-side path): it exits 2 before any trial, and ``submit --json`` carries its reason as
    ``error`` (before: only Ray's "exit code 2" message; the reason was in the job log alone)."""
    (tmp_path / "file").write_text("")
    code, sub = cli("submit", *sweep_args(tmp_path), f"work_dir={tmp_path}/file/work", "--cluster",
                    ray_head["yaml"], "--keep", "--wait", "--out", str(tmp_path / "reports"))
    assert code == 1 and sub["status"] == "FAILED", sub
    assert sub["error"].startswith(f"work_dir={tmp_path}/file/work: "), sub
    assert sub["failures"] == [], sub
    code, st = cli("status", sub["submission_id"], "--cluster", ray_head["yaml"])
    assert code == 1 and st["error"] == sub["error"] and st["failures"] == [], st


@pytest.mark.parametrize("args", [["status"], ["logs"], ["logs", "--follow"], ["stop"]], ids=" ".join)
def test_an_unknown_job_id_is_named_and_exits_2(ray_head, args):
    """status, logs (--follow) and stop of an id the cluster does not know: exit 2 (a retry gets the same
    answer), the id and "does not exist" in the error, one JSON document under --json."""
    res = CliRunner().invoke(app, [*args, "no-such-sweep-a1", "--cluster", ray_head["yaml"], "--json"])
    assert res.exit_code == 2, res.output
    doc = json.loads(res.stdout)
    assert doc["ok"] is False and doc["exit_code"] == 2, doc
    assert "no-such-sweep-a1" in doc["error"] and "does not exist" in doc["error"], doc
