"""Submitting real sweeps to the local head (token auth on): SUCCEEDED with a verified report
pulled, idempotent submission ids, status/logs/list/pull, a killed trial worker retried from its
checkpoint (not step 0), and a sweep whose driver was SIGKILLed, or stopped, resumed without
redoing finished trials."""

from __future__ import annotations

import json
import os
import re
import signal
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tracebridge.cli import app
from tracebridge.report import verify_report

pytestmark = pytest.mark.cluster

ROOT = Path(__file__).resolve().parents[2]
BUNDLE = ROOT / "tests" / "data" / "train_views"


def cli(*args: str) -> tuple[int, object]:
    res = CliRunner().invoke(app, [*args, "--json"])
    try:
        return res.exit_code, json.loads(res.stdout)
    except ValueError:
        raise AssertionError(f"exit {res.exit_code}: {res.stdout[-3000:]}\n{res.stderr[-3000:]}") from None


def sweep_args(tmp: Path, *extra: str) -> list[str]:
    return ["configs/sweep/smoke.yaml", f"bundle={BUNDLE}", f"storage={tmp}/storage", f"work_dir={tmp}/work", *extra]


def attempts(tmp: Path) -> dict[str, list[dict]]:
    out = {}
    for f in (tmp / "work").glob("*/trials/*/attempts.jsonl"):
        out[f.parent.name] = [json.loads(x) for x in f.read_text().splitlines()]
    return out


def wait_for(pred, timeout: float = 240.0, what: str = "condition", job: tuple[str, str] | None = None) -> None:
    """Poll ``pred``; with ``job`` = (submission id, cluster yaml), fail at once with the job's
    message when it ended first (e.g. Ray's runtime_env setup failed) instead of timing out."""
    end, checked = time.time() + timeout, 0.0
    while not pred():
        assert time.time() < end, f"timed out waiting for {what}"
        if job and time.time() - checked > 2:
            checked = time.time()
            st = cli("status", job[0], "--cluster", job[1])[1]
            assert st["status"] not in ("FAILED", "STOPPED", "SUCCEEDED"), \
                f"job {job[0]} ended {st['status']} before {what}: {st['message']}"
        time.sleep(0.2)


@pytest.fixture(autouse=True)
def _in_root(monkeypatch):
    monkeypatch.chdir(ROOT)


@pytest.mark.parametrize("path", [[], ["resources.use_train=true"]], ids=["tune", "ray_train"])
def test_a_trial_whose_rows_cannot_train_fails_once_and_submit_says_why(ray_head, tmp_path, path):
    """Every SFT row is dropped at max_length=32: retrying (max_failures=2) would fail the same way,
    so the trial runs once, and `submit --json` gives the failed trial and the fixes (before: status
    FAILED, the reason only in the job's log, after three tries). On the Ray Train path too (before:
    retried by Ray Train's FailureConfig, then by Tune's)."""
    code, sub = cli("submit", *sweep_args(tmp_path, "variants=[baseline]", "max_failures=2",
                                           "overrides.train.max_length=32", *path),
                    "--cluster", ray_head["yaml"], "--keep", "--wait", "--out", str(tmp_path / "reports"))
    assert code == 1 and sub["status"] == "FAILED", sub
    (failure,) = sub["failures"]
    assert failure["trial_id"] == "verifier-baseline-s0"
    assert failure["error"].startswith("TrialInputError: sft: all ") and "data.fit_context=true" in failure["error"]
    assert [e["event"] for e in attempts(tmp_path)["verifier-baseline-s0"]] == ["start"]  # tried once


def test_submit_tiny_sweep_succeeds_with_verified_report(ray_head, smoke_storage, tmp_path):
    y = ray_head["yaml"]
    code, sub = cli("submit", *sweep_args(smoke_storage), "--cluster", y, "--keep", "--wait",
                    "--out", str(tmp_path / "reports"))
    assert code == 0, sub
    # created, unless another test of this head submitted the shared smoke sweep first (test order)
    assert sub["status"] == "SUCCEEDED" and sub["submission_id"].endswith("-a1")
    report = Path(sub["report"]).parent
    assert verify_report(report) == []
    man = json.loads((report / "manifest.json").read_text())
    assert man["bundle_id"] == json.loads((BUNDLE / "manifest.json").read_text())["bundle_id"]
    assert man["config"]["sweep_id"] == sub["sweep_id"]
    # the cluster it ran on (--cluster), not the sweep YAML's own `cluster: local` (the job another test created,
    # test_window's included, ran on its own --cluster)
    assert man["config"]["sweep"]["cluster"] != "local"
    if sub["created"]:
        assert man["config"]["sweep"]["cluster"] == str(Path(y).resolve()), man["config"]["sweep"]["cluster"]
    results = json.loads((report / "results.json").read_text())
    assert set(results["roles"]["verifier"]["variants"]) == {"baseline", "optimized"}
    assert "comparison" in results["roles"]["verifier"]

    # the same submit again: same submission id, nothing new started
    code, again = cli("submit", *sweep_args(smoke_storage), "--cluster", y, "--keep")
    assert code == 0 and again["created"] is False and again["submission_id"] == sub["submission_id"]
    code, jobs = cli("list", "--cluster", y)
    assert [j["submission_id"] for j in jobs if j["sweep_id"] == sub["sweep_id"]] == [sub["submission_id"]]

    code, st = cli("status", sub["submission_id"], "--cluster", y)
    assert code == 0 and st["status"] == "SUCCEEDED" and st["metadata"]["bundle_id"] == man["bundle_id"]
    assert "token" not in json.dumps(st["metadata"]).lower()
    logs = CliRunner().invoke(app, ["logs", sub["submission_id"], "--cluster", y])
    assert logs.exit_code == 0 and "report pushed to" in logs.stdout
    follow = CliRunner().invoke(app, ["logs", sub["submission_id"], "--cluster", y, "--follow"])
    assert follow.exit_code == 0 and follow.stdout == logs.stdout  # a finished job: the whole log, then exit

    # pull by submission id verifies; a tampered copy does not
    code, pulled = cli("pull", sub["submission_id"], "--cluster", y, "--out", str(tmp_path / "again"))
    assert code == 0 and pulled["problems"] == []
    copy = tmp_path / "copy"
    import shutil

    shutil.copytree(smoke_storage / "storage" / "reports" / sub["sweep_id"], copy)
    (copy / "report.html").write_text((copy / "report.html").read_text() + "<!-- edited -->")
    code, bad = cli("pull", str(copy), "--out", str(tmp_path / "bad"))
    assert code == 1 and any("report.html was modified" in p for p in bad["problems"])


def test_killed_trial_worker_is_retried_and_sweep_completes(ray_head, tmp_path):
    y = ray_head["yaml"]
    args = sweep_args(tmp_path, "variants=[baseline]", "overrides.train.max_steps=40", "overrides.train.save_steps=5",
                      "overrides.train.logging_steps=5")
    code, sub = cli("submit", *args, "--cluster", y, "--keep")
    assert code == 0, sub
    exp = tmp_path / "storage" / sub["sweep_id"] / "verifier-baseline-s0"

    def checkpoint_registered() -> bool:  # the driver logged a checkpoint report (a result without a loss)
        f = exp / "result.json"
        return f.is_file() and any("loss" not in json.loads(x) for x in f.read_text().splitlines() if x.strip())

    wait_for(checkpoint_registered, what="the trial's first checkpoint", job=(sub["submission_id"], y))
    pid = attempts(tmp_path)["verifier-baseline-s0"][0]["pid"]
    os.kill(pid, signal.SIGKILL)  # the Tune trial's worker process
    wait_for(lambda: cli("status", sub["submission_id"], "--cluster", y)[1]["status"] in ("SUCCEEDED", "FAILED"),
             what="the job to end")
    code, st = cli("status", sub["submission_id"], "--cluster", y)
    assert st["status"] == "SUCCEEDED", st
    runs = [a for a in attempts(tmp_path)["verifier-baseline-s0"] if a["event"] == "start"]
    assert len(runs) == 2 and runs[0]["pid"] == pid != runs[1]["pid"]
    assert runs[1]["resumed"] == "train"  # continued from the reported checkpoint, not from scratch
    step = int(re.fullmatch(r"sft/checkpoint-(\d+)", runs[1]["resume_from"]).group(1))
    rows = [json.loads(x) for x in (exp / "result.json").read_text().splitlines() if x.strip()]
    retried = [r["step"] for r in rows if r["pid"] == runs[1]["pid"] and "loss" in r]
    assert step >= 5 and retried and min(retried) > step  # the retry trained on from the checkpoint's step
    report = tmp_path / "storage" / "reports" / sub["sweep_id"]
    assert verify_report(report) == []
    trial = json.loads((report / "results.json").read_text())["trials"][0]
    assert trial["sft/steps"] == 40
    # GPU time: both attempts, each to its last report (the trial's own wall_s is the retry's alone)
    attempt_s = {p: max(r["time_since_restore"] for r in rows if r["pid"] == p) for p in {r["pid"] for r in rows}}
    assert trial["attempts"] == 2 and trial["held_s"] == pytest.approx(sum(attempt_s.values()))
    assert trial["held_s"] >= trial["wall_s"] + attempt_s[pid] * 0.99
    assert next(t for t in json.loads((report / "manifest.json").read_text())["trials"])["attempts"] == 2


def tune_status(exp: Path) -> dict[str, str]:
    """Trial id -> status in the newest Tune experiment state on storage (what Tuner.restore reads).
    Newest by name: each attempt's driver writes its own file, stamped with its start time."""
    newest = max(exp.glob("experiment_state-*.json"), key=lambda p: p.name)  # none yet: ValueError
    trials = (json.loads(trial) for trial, _ in json.loads(newest.read_text())["trial_data"])
    return {t["config"]["spec"]["trial_id"]: t["status"] for t in trials}


def tune_status_now(exp: Path) -> dict[str, str]:
    try:
        return tune_status(exp)
    except (OSError, ValueError):  # being rewritten
        return {}


def saved_and_running(tmp: Path, exp: Path, saved: int) -> bool:
    """``saved`` finished trials are in Tune's experiment state while the next one trains: the moment
    to interrupt a sweep (whatever the speed of a trial)."""
    running = [t for t, a in attempts(tmp).items() if a[-1]["event"] == "start"]
    return bool(running) and list(tune_status_now(exp).values()).count("TERMINATED") == saved


def sweep_driver(tmp: Path):
    import psutil

    drivers = [p for p in psutil.process_iter(["cmdline"]) if "jobs/sweep.py" in (p.info["cmdline"] or [])
               and f"storage={tmp}/storage" in p.info["cmdline"]]
    assert len(drivers) == 1, [p.info["cmdline"] for p in drivers]
    return drivers[0]


def test_stopped_then_killed_sweep_resumes_without_redoing_finished_trials(ray_head, tmp_path):
    """One sweep of three trials, one at a time, interrupted twice: `stop` (attempt a1 STOPPED), then
    its resume's driver SIGKILLed (a2 FAILED: no handler runs, Tune saves nothing more), each once a
    finished trial is in the experiment state and the next one trains (a fixed sleep let every trial
    finish first once trials got faster). Each resume never starts a finished trial again."""
    y = ray_head["yaml"]
    args = sweep_args(tmp_path, "variants=[baseline]", "seeds=[0,1,2]", "budget.max_concurrent=1",
                      "overrides.train.max_steps=40", "overrides.train.save_steps=10")
    code, sub = cli("submit", *args, "--cluster", y, "--keep")
    assert code == 0, sub
    exp = tmp_path / "storage" / sub["sweep_id"]
    wait_for(lambda: saved_and_running(tmp_path, exp, 1), job=(sub["submission_id"], y),
             what="a finished trial in the experiment state while the next one trains")
    code, _ = cli("stop", sub["submission_id"], "--cluster", y)
    assert code == 0
    wait_for(lambda: cli("status", sub["submission_id"], "--cluster", y)[1]["status"] == "STOPPED", what="STOPPED")
    before = attempts(tmp_path)
    finished = [t for t, a in before.items() if any(e["event"] == "done" for e in a)]
    assert len(finished) == 1, before

    code, sub = cli("submit", *args, "--cluster", y, "--keep", "--resume")
    assert code == 0 and sub["submission_id"].endswith("-a2"), sub
    wait_for(lambda: saved_and_running(tmp_path, exp, 2), job=(sub["submission_id"], y),
             what="a second finished trial in the experiment state while the third trains")
    sweep_driver(tmp_path).kill()
    wait_for(lambda: cli("status", sub["submission_id"], "--cluster", y)[1]["status"] in ("FAILED", "STOPPED",
                                                                                             "SUCCEEDED"),
             what="the job to end")
    assert cli("status", sub["submission_id"], "--cluster", y)[1]["status"] == "FAILED"
    assert [e["event"] for e in attempts(tmp_path)[finished[0]]] == ["start", "done"]  # a2 did not start it again
    before = attempts(tmp_path)
    finished = sorted(t for t, st in tune_status(exp).items() if st == "TERMINATED")
    assert len(finished) == 2, tune_status(exp)  # the third was killed mid-training

    code, res = cli("submit", *args, "--cluster", y, "--keep", "--resume", "--wait", "--out", str(tmp_path / "r"))
    assert code == 0 and res["status"] == "SUCCEEDED" and res["submission_id"].endswith("-a3"), res
    after = attempts(tmp_path)
    assert len(after) == 3
    for t in finished:  # never started again
        assert after[t] == before[t] and after[t][-1]["event"] == "done"
    results = json.loads((Path(res["report"]).parent / "results.json").read_text())
    assert sorted(t["seed"] for t in results["trials"]) == [0, 1, 2]
    for t in results["trials"]:  # GPU time over every attempt that reported, the earlier jobs' included
        rows = [json.loads(x) for x in (exp / t["trial_id"] / "result.json").read_text().splitlines() if x.strip()]
        pids = {r["pid"] for r in rows}
        assert t["attempts"] == len(pids) <= len([e for e in after[t["trial_id"]] if e["event"] == "start"])
        assert t["held_s"] == pytest.approx(sum(max(r["time_since_restore"] for r in rows if r["pid"] == p)
                                                for p in pids)) and t["held_s"] >= t["wall_s"]
    assert any(t["attempts"] > 1 for t in results["trials"])  # the one killed mid-training at least


def test_submit_json_wait_shows_the_job_progress_on_stderr(ray_head, smoke_storage, tmp_path):
    """`submit --json --wait` printed nothing until the job ended (hours for a real sweep): the job's log
    now streams to stderr while stdout stays one JSON document."""
    res = CliRunner().invoke(app, ["submit", *sweep_args(smoke_storage), "--cluster", ray_head["yaml"], "--keep",
                                   "--wait", "--out", str(tmp_path / "reports"), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["status"] == "SUCCEEDED"
    assert "trial verifier-baseline-s0 finished" in res.stderr and "report pushed to" in res.stderr
    assert "submitted " in res.stderr  # 'submitted' or 'already submitted' (the shared smoke sweep)
