"""Failed trials in a report: ``results.json`` lists each one with its status and reason (before, it left them
out: only ``tracebridge report``'s stderr named them, and a sweep's pushed report had no word of them), the
page shows them and says the winner was read off the trials that finished, and ``report`` of a folder that
is not there says so (before: "no trial.json under X")."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from tests.report.test_report import fake_trial
from tracebridge.cli import app
from tracebridge.report import verify_report, write_report

REASON = "TrialInputError: sft: all 12 rows longer than max_length=32 <b>"


def trial_folders(root: Path) -> Path:
    """Two finished verifier trials (baseline, optimized; seed 0) and a failed optimized seed-1 trial."""
    rng = np.random.default_rng(0)
    acc = (rng.random(50) < 0.5).astype(float)
    for variant in ("baseline", "optimized"):
        r = fake_trial(root / "items", variant, 0, acc, 1e-3)
        d = root / "runs" / f"verifier-{variant}-s0"
        d.mkdir(parents=True)
        (d / "trial.json").write_text(json.dumps({"result": r}))
    failed = root / "runs" / "verifier-optimized-s1"
    failed.mkdir()
    (failed / "trial_failed.json").write_text(json.dumps(
        {"role": "verifier", "variant": "optimized", "seed": 1, "error": REASON}))
    return root / "runs"


def test_report_lists_failed_trials_in_results_json_and_on_the_page(tmp_path):
    runs = trial_folders(tmp_path)
    res = CliRunner().invoke(app, ["report", str(runs), "--out", str(tmp_path / "rep")])
    assert res.exit_code == 1, res.output  # written, and a trial failed: exit 1 as `train` (before: 0)
    assert "(2 trials finished, 1 failed)" in res.stdout
    results = json.loads((tmp_path / "rep" / "results.json").read_text())
    (failed,) = results["failed_trials"]
    assert failed == {"trial_dir": str((runs / "verifier-optimized-s1").resolve()), "role": "verifier",
                      "variant": "optimized", "seed": 1, "status": "failed", "reason": REASON,
                      "error_type": "TrialInputError", "error_message": REASON.removeprefix("TrialInputError: ")}
    assert results["counts"] == {"finished": 2, "failed": 1}
    assert [t["status"] for t in results["trials"]] == ["finished", "finished"]
    block = results["roles"]["verifier"]
    assert block["failed_trials"] == 1
    assert (block["variants"]["optimized"]["failed"], block["variants"]["baseline"]["failed"]) == (1, 0)
    assert "1 trial(s) of this role failed and are left out" in block["winner_reason"]
    html = (tmp_path / "rep" / "report.html").read_text()
    assert "Failed trials (1)" in html and "2 trial(s) finished, <a href='#failed'>1 failed</a>" in html
    assert "max_length=32 &lt;b&gt;" in html and "max_length=32 <b>" not in html  # the reason is escaped
    assert verify_report(tmp_path / "rep") == []


def test_a_report_whose_role_only_failed_lists_it_without_a_crash(tmp_path):
    """A worker trial that failed beside finished verifier trials: no worker block to put it in, so it is
    listed in failed_trials and on the page only (the tables and plots hold the roles with results)."""
    rng = np.random.default_rng(1)
    trials = [fake_trial(tmp_path, "baseline", 0, (rng.random(30) < 0.5).astype(float), 1e-3)]
    man = write_report(trials, tmp_path / "rep", n_boot=50,
                       failed=[{"trial_id": "worker-baseline-s0", "role": "worker", "variant": "baseline", "seed": 0,
                                "ablation": {}, "error": "RuntimeError: CUDA out of memory"}])
    results = json.loads((tmp_path / "rep" / "results.json").read_text())
    assert list(results["roles"]) == ["verifier"] and results["roles"]["verifier"]["failed_trials"] == 0
    assert results["failed_trials"] == [{"trial_id": "worker-baseline-s0", "role": "worker", "variant": "baseline",
                                         "seed": 0, "ablation": {}, "status": "failed",
                                         "reason": "RuntimeError: CUDA out of memory", "error_type": "RuntimeError",
                                         "error_message": "CUDA out of memory"}]
    assert "worker-baseline-s0" in (tmp_path / "rep" / "report.html").read_text()
    assert man["winners"] == {"verifier": None}


def test_report_of_a_folder_that_does_not_exist_names_it(tmp_path):
    missing = tmp_path / "no-such-runs"
    res = CliRunner().invoke(app, ["report", str(missing), "--out", str(tmp_path / "rep"), "--json"])
    assert res.exit_code == 2, res.output
    assert json.loads(res.stdout)["error"] == f"report: no such trial folder: {missing} does not exist"
    a_file = tmp_path / "trial.json"
    a_file.write_text("{}")
    res = CliRunner().invoke(app, ["report", str(a_file), "--out", str(tmp_path / "rep")])
    assert res.exit_code == 2 and f"{a_file} is a file, not a folder" in res.stderr, res.output
    res = CliRunner().invoke(app, ["report", "--verify", str(missing)])
    assert res.exit_code == 2 and f"no such report folder: {missing} does not exist" in res.stderr, res.output
    assert not (tmp_path / "rep").exists()


def test_report_of_trials_that_all_failed_writes_their_failures_and_exits_1(tmp_path):
    """As ``train`` and a sweep do: before, ``report`` exited 2 ("no trial.json under") and wrote nothing, so
    the failures' reasons reached no results.json. A folder with no trial of either kind is still exit 2."""
    runs = tmp_path / "runs"
    for seed in (0, 1):
        d = runs / f"verifier-optimized-s{seed}"
        d.mkdir(parents=True)
        (d / "trial_failed.json").write_text(json.dumps(
            {"role": "verifier", "variant": "optimized", "seed": seed, "error": REASON}))
    res = CliRunner().invoke(app, ["report", str(runs), "--out", str(tmp_path / "rep"), "--json"])
    assert res.exit_code == 1, res.output
    body = json.loads(res.stdout)
    assert body["trials"] == 0 and [f["seed"] for f in body["failed"]] == [0, 1]
    results = json.loads((tmp_path / "rep" / "results.json").read_text())
    assert results["counts"] == {"finished": 0, "failed": 2}
    assert [f["reason"] for f in results["failed_trials"]] == [REASON, REASON]
    assert "Failed trials (2)" in (tmp_path / "rep" / "report.html").read_text()
    assert verify_report(tmp_path / "rep") == []

    empty = tmp_path / "empty"
    empty.mkdir()
    res = CliRunner().invoke(app, ["report", str(empty), "--out", str(tmp_path / "rep2")])
    assert res.exit_code == 2 and f"no trial.json under {empty}" in res.stderr, res.output
    assert not (tmp_path / "rep2").exists()


def test_report_of_trials_of_which_one_failed_exits_1_with_the_report_written(tmp_path):
    """A command that reports exits non-zero when what it checks failed: before, ``report`` exited 0 whenever one
    trial finished, so ``tracebridge report runs && promote`` went on past a failed trial. ``--json`` keeps its
    keys and adds ``failed_trials`` (the count); a report of finished trials only still exits 0."""
    runs = trial_folders(tmp_path)
    res = CliRunner().invoke(app, ["report", str(runs), "--out", str(tmp_path / "rep"), "--json"])
    assert res.exit_code == 1, res.output
    body = json.loads(res.stdout)
    assert {"report", "trials", "winners", "report_id", "wall_s", "wall_s_source", "failed"} <= set(body)
    assert (body["trials"], body["failed_trials"], len(body["failed"])) == (2, 1, 1)
    assert verify_report(tmp_path / "rep") == []
    (runs / "verifier-optimized-s1" / "trial_failed.json").unlink()
    res = CliRunner().invoke(app, ["report", str(runs), "--out", str(tmp_path / "rep2"), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["failed_trials"] == 0
