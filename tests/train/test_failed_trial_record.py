"""A failed trial leaves a record of why (``trial_failed.json``), and a trial run again in the same folder
never leaves the earlier run's ``trial.json`` behind to pass for its own result: before, a rerun whose
optimized trial failed kept the earlier, differently configured ``trial.json`` (its ``sft/final`` now
retrained), and ``tracebridge report runs`` counted it as a result with no word of the failure."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

import tracebridge.cli  # noqa: F401 - registers the command modules
from tracebridge.cli.app import app

ROOT = Path(__file__).resolve().parents[2]
CFG = str(ROOT / "configs" / "train" / "cpu_tiny.yaml")
FIXTURE = ROOT / "tests" / "data" / "train_views"
FAST = ["train.max_steps=2", "dpo.max_steps=2", "train.save_steps=0", "eval.n_boot=100"]


def _train(out: Path, *extra: str) -> object:
    return CliRunner().invoke(app, ["train", CFG, *FAST, *extra, "--bundle", str(FIXTURE), "--out", str(out)])


def test_a_failed_rerun_replaces_the_earlier_result_with_a_failure_record(tmp_path):
    runs = tmp_path / "runs"
    opt = runs / "verifier-optimized-s0"
    assert _train(runs, "--variants", "optimized").exit_code == 0 and (opt / "trial.json").is_file()

    res = _train(runs, "dpo.max_length=32", "--variants", "baseline,optimized")  # every DPO pair is cut
    assert res.exit_code == 1, res.output
    assert not (opt / "trial.json").exists() and not (opt / "eval_items.json").exists()
    rec = json.loads((opt / "trial_failed.json").read_text())
    assert (rec["role"], rec["variant"], rec["seed"]) == ("verifier", "optimized", 0)
    assert rec["error"].startswith("TrialInputError: dpo: all") and rec["failed_at"] >= rec["started_at"]
    assert (runs / "verifier-baseline-s0" / "trial.json").is_file()  # the other trial's result is intact
    assert not (runs / "verifier-baseline-s0" / "trial_failed.json").exists()

    res = CliRunner().invoke(app, ["report", str(runs), "--out", str(tmp_path / "rep"), "--json"])
    assert res.exit_code == 1, res.output  # the report written, and a trial failed
    body = json.loads(res.stdout)
    assert body["trials"] == 1 and [f["trial_dir"] for f in body["failed"]] == [str(opt.resolve())]
    assert body["failed"][0]["error"] == rec["error"]
    res = CliRunner().invoke(app, ["report", str(runs), "--out", str(tmp_path / "rep")])
    assert f"failed trial {opt.resolve()}: TrialInputError" in res.stderr  # and in results.json failed_trials

    # only the failed trial: a report of its failure, exit 1, as `train` itself does (before: exit 2, nothing written)
    res = CliRunner().invoke(app, ["report", str(opt), "--out", str(tmp_path / "rep2")])
    assert res.exit_code == 1, res.output
    assert f"failed trial {opt.resolve()}: TrialInputError: dpo: all" in res.stderr
    results = json.loads((tmp_path / "rep2" / "results.json").read_text())
    assert results["counts"] == {"finished": 0, "failed": 1} and results["failed_trials"][0]["reason"] == rec["error"]

    assert _train(runs, "--variants", "optimized").exit_code == 0  # a success clears the failure record
    assert (opt / "trial.json").is_file() and not (opt / "trial_failed.json").exists()
