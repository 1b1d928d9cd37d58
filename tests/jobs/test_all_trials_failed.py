"""A sweep whose trials all fail still pushes a report (before: none, so ``pull`` had nothing to fetch and
nothing recorded why): ``jobs/sweep.py`` run directly (its in-process Ray), every SFT row of the one trial
cut at ``train.max_length=32``; the pushed report verifies and lists the failure with its error type,
message and the config the trial trained with, and the job exits 1. A trial that raised (a Ray error
wrapping it) is listed by its own exception, not Ray's wrapper and its terminal colours."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tracebridge.report import verify_report

ROOT = Path(__file__).resolve().parents[2]
BUNDLE = ROOT / "tests" / "data" / "train_views"


def test_a_sweep_whose_trials_all_fail_pushes_a_report_of_the_failures(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env.update(LITELLM_LOCAL_MODEL_COST_MAP="True", OMP_NUM_THREADS="1")
    res = subprocess.run([sys.executable, "jobs/sweep.py", "configs/sweep/smoke.yaml", f"bundle={BUNDLE}",
                          f"storage={tmp_path}/storage", f"work_dir={tmp_path}/work", "variants=[baseline]",
                          "overrides.train.max_length=32", "max_failures=0"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=300, check=False)
    assert res.returncode == 1, res.stderr[-4000:]
    summary = json.loads(res.stdout.strip().splitlines()[-1])
    assert summary["trials"] == 0 and [f["trial_id"] for f in summary["failures"]] == ["verifier-baseline-s0"]
    assert summary["failed_trials"] == 1  # the count beside the list (tracebridge report --json has it too)
    report = tmp_path / "storage" / "reports" / summary["sweep_id"]
    assert summary["report_uri"] == str(report) and verify_report(report) == []
    results = json.loads((report / "results.json").read_text())
    assert results["trials"] == [] and results["counts"] == {"finished": 0, "failed": 1}
    (failed,) = results["failed_trials"]
    assert (failed["trial_id"], failed["role"], failed["variant"], failed["seed"]) == \
        ("verifier-baseline-s0", "verifier", "baseline", 0)
    assert failed["error_type"] == "TrialInputError", failed
    assert failed["error_message"].startswith("sft: all ") and "train.max_length" in failed["error_message"]
    assert failed["reason"] == f"TrialInputError: {failed['error_message']}"
    # the config it trained with: the recipe, the sweep's overrides and the cell's role and seed
    cfg = failed["config"]
    assert (cfg["role"], cfg["variant"], cfg["seed"], cfg["train"]["max_length"]) == ("verifier", "baseline", 0, 32)
    man = json.loads((report / "manifest.json").read_text())
    assert man["sweep_id"] == summary["sweep_id"] and man["trials"] == [] and man["winners"] == {}
    html = (report / "report.html").read_text()
    assert "Failed trials (1)" in html and "<code>TrialInputError</code>" in html and "verifier-baseline-s0" in html


def test_a_raised_trial_error_is_listed_by_its_own_exception():
    from ray.exceptions import RayTaskError

    from tracebridge.sweep.tune_run import error_fields

    wrapped = RayTaskError("ImplicitFunc.train", "\x1b[36mray::ImplicitFunc.train()\x1b[39m\nTraceback ...\n"
                           "ValueError: no such column", ValueError("no such column")).as_instanceof_cause()
    got = error_fields(None, wrapped, "unused")
    assert (got["error_type"], got["error_message"]) == ("ValueError", "no such column")
    assert "\x1b" not in got["error"] and got["error"].startswith("ray::ImplicitFunc.train()")
    assert error_fields("TrialInputError: dpo: all 8 pairs dropped", None, "unused")["error_type"] == "TrialInputError"
    assert error_fields(None, None, "not run", "not_run") == {"error": "not run", "error_type": "not_run",
                                                             "error_message": "not run"}


def test_a_reevaluation_whose_trials_all_fail_pushes_a_report_of_the_failures(tmp_path):
    """jobs/eval.py of a sweep run with keep_models=false: no checkpoint holds a model, so every re-evaluation
    fails. It pushed no report (before) and named each failure by Ray's wrapper, whose first line is the
    task's name in terminal colours; the report now lists each with the task's own error."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env.update(LITELLM_LOCAL_MODEL_COST_MAP="True", OMP_NUM_THREADS="1")
    args = ["configs/sweep/smoke.yaml", f"bundle={BUNDLE}", f"storage={tmp_path}/storage", f"work_dir={tmp_path}/work",
            "variants=[baseline]", "keep_models=false", "overrides.train.max_steps=2", "overrides.train.save_steps=0"]
    run = lambda script, *extra: subprocess.run([sys.executable, script, *args, *extra], cwd=ROOT, env=env,
                                                capture_output=True, text=True, timeout=300, check=False)
    swept = run("jobs/sweep.py")
    assert swept.returncode == 0, swept.stderr[-4000:]
    res = run("jobs/eval.py", "--", "eval.n_boot=300")
    assert res.returncode == 1, res.stderr[-4000:]
    summary = json.loads(res.stdout.strip().splitlines()[-1])
    assert summary["trials"] == 0 and summary["report_uri"].startswith(f"{tmp_path}/storage/reports/smoke-")
    (failure,) = summary["failures"]
    assert summary["failed_trials"] == 1
    assert failure["error_type"] == "FileNotFoundError" and "\x1b" not in failure["error"]
    assert failure["error"].startswith("FileNotFoundError: ") and "keep_models=false" in failure["error"]
    report = Path(summary["report_uri"])
    assert verify_report(report) == []
    results = json.loads((report / "results.json").read_text())
    assert results["n_boot"] == 300  # the interval setting the re-evaluation was given (before: the sweep's, 200)
    (failed,) = results["failed_trials"]
    assert failed["trial_id"] == "verifier-baseline-s0" and failed["error_type"] == "FileNotFoundError"
    assert failed["error_message"].endswith("no saved model (was the sweep run with keep_models=false?)")
