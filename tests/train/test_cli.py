"""tracebridge train / eval / report on the hand-made bundle: exit codes, --json, report files."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

import tracebridge.cli  # noqa: F401 - registers the command modules
from tracebridge.cli.app import app

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "data" / "train_views"
FAST = ["train.max_steps=10", "train.batch_size=8", "dpo.max_steps=4", "eval.n_boot=200", "train.save_steps=0"]


def test_train_eval_report_commands(tmp_path):
    runner = CliRunner()
    res = runner.invoke(app, ["train", str(ROOT / "configs/train/cpu_tiny.yaml"), *FAST, "--bundle", str(FIXTURE),
                              "--out", str(tmp_path / "runs"), "--variants", "baseline,optimized", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert [t["variant"] for t in out["trials"]] == ["baseline", "optimized"] and out["failed"] == []
    assert Path(out["report"]).is_file() and "verifier" in out["winners"]

    ckpt = out["trials"][1]["checkpoint_dir"]
    res = runner.invoke(app, ["eval", ckpt, str(ROOT / "configs/train/cpu_tiny.yaml"), "eval.n_boot=200",
                              "--bundle", str(FIXTURE), "--out", str(tmp_path / "ev"), "--json",
                              "--min", "verifier/accuracy=1.01"])
    assert res.exit_code == 1, res.output  # the floor is above any accuracy
    body = json.loads(res.stdout)
    assert "verifier/accuracy" in body["metrics"] and "verifier/accuracy" in body["below_floor"]
    assert body["passed"] is False  # as validate's, review's and the audit's: no key said the bounds failed
    assert (tmp_path / "ev" / "eval_items.json").is_file()

    res = runner.invoke(app, ["report", str(tmp_path / "runs"), "--out", str(tmp_path / "rep"), "--json"])
    assert res.exit_code == 0 and json.loads(res.stdout)["trials"] == 2
    man = json.loads((tmp_path / "rep" / "manifest.json").read_text())  # the trials recorded when they ran
    # first start to last end (millisecond timestamps): at least as long as the longer trial
    assert man["wall_s"] >= max(t["wall_s"] for t in man["trials"]) - 0.002 > 0, man["wall_s"]
    assert man["wall_s_source"].startswith("the trials' started_at/finished_at")
    assert runner.invoke(app, ["report", "--verify", str(tmp_path / "rep")]).exit_code == 0
    (tmp_path / "rep" / "report.html").write_text("tampered")
    assert runner.invoke(app, ["report", "--verify", str(tmp_path / "rep")]).exit_code == 1


def test_train_rejects_bad_overrides_and_missing_bundles(tmp_path):
    runner = CliRunner()
    res = runner.invoke(app, ["train", str(ROOT / "configs/train/cpu_tiny.yaml"), "train.lrr=1", "--bundle", str(FIXTURE)])
    assert res.exit_code == 2 and "did you mean 'train.lr'" in res.output
    res = runner.invoke(app, ["train", str(ROOT / "configs/train/cpu_tiny.yaml"), "--bundle", str(tmp_path)])
    assert res.exit_code == 2 and "no manifest" in res.output


def test_train_with_a_bad_bundle_leaves_no_trial_folder(tmp_path):
    bad = tmp_path / "bundle"
    bad.mkdir()
    (bad / "manifest.json").write_text("{torn")
    res = CliRunner().invoke(app, ["train", str(ROOT / "configs/train/cpu_tiny.yaml"), "--bundle", str(bad),
                                   "--out", str(tmp_path / "runs")])
    assert res.exit_code == 2 and "manifest.json: not JSON" in res.output, res.output
    assert not (tmp_path / "runs").exists()  # before: an empty runs/verifier-baseline-s0/


def test_train_prints_why_a_trial_failed(tmp_path):
    """Text mode printed only 'failed trials: 1'; the reason was in --json alone."""
    res = CliRunner().invoke(app, ["train", str(ROOT / "configs/train/cpu_tiny.yaml"), "train.max_steps=2",
                                   "train.save_steps=0", "dpo.max_length=32", "--bundle", str(FIXTURE),
                                   "--out", str(tmp_path / "runs"), "--variants", "optimized"])
    assert res.exit_code == 1, res.output
    assert "failed trials: 1" in res.output
    assert "failed trial verifier-optimized-s0: TrialInputError: dpo: all" in res.output
    assert "raise dpo.max_length, or set data.fit_context=true" in res.output
    # the report lists it too, with its error (before: no report, as no trial had finished)
    results = json.loads((tmp_path / "runs" / "report" / "results.json").read_text())
    (failed,) = results["failed_trials"]
    assert (failed["role"], failed["variant"], failed["seed"], failed["error_type"]) == \
        ("verifier", "optimized", 0, "TrialInputError")
    assert failed["trial_dir"] == str(tmp_path / "runs" / "verifier-optimized-s0") and results["trials"] == []


def test_trains_report_lists_the_trial_that_failed_beside_the_one_that_finished(tmp_path):
    """Its report read 'failed': 0 and left the failed trial out of results.json and the page, where the
    failure was printed on stderr only."""
    res = CliRunner().invoke(app, ["train", str(ROOT / "configs/train/cpu_tiny.yaml"), "train.max_steps=2",
                                   "train.save_steps=0", "dpo.max_length=32", "data.max_eval_rows=8", "eval.n_boot=100",
                                   "--bundle", str(FIXTURE), "--out", str(tmp_path / "runs"),
                                   "--variants", "baseline,optimized", "--json"])
    assert res.exit_code == 1, res.output
    results = json.loads((tmp_path / "runs" / "report" / "results.json").read_text())
    assert results["counts"] == {"finished": 1, "failed": 1}
    assert [f["variant"] for f in results["failed_trials"]] == ["optimized"]
    block = results["roles"]["verifier"]
    assert block["failed_trials"] == 1 and "1 trial(s) of this role failed" in block["winner_reason"]
    assert "Failed trials (1)" in (tmp_path / "runs" / "report" / "report.html").read_text()


def test_eval_says_when_a_metric_has_no_item(capsys):
    from tracebridge.cli.train import _print_metrics

    _print_metrics({"worker/action_match": 0.5, "worker/action_match_lo": 0.25, "worker/action_match_hi": 0.75,
                    "worker/error_recurrence": float("nan"), "worker/error_recurrence_lo": float("nan"),
                    "worker/error_recurrence_hi": float("nan")})
    out = capsys.readouterr().out
    assert "0.5000  [0.2500, 0.7500]" in out and "nan" not in out
    assert "worker/error_recurrence" in out and "no eval item has this metric" in out


def test_train_says_when_a_recipe_trained_on_part_of_its_rows(tmp_path):
    """TRL drops rows with no trainable token left within max_length; only a log line said so, and
    an uplift measured on a fraction of the rows looked like any other."""
    res = CliRunner().invoke(app, ["train", str(ROOT / "configs/train/cpu_tiny.yaml"), "train.max_steps=1",
                                   "train.save_steps=0", "train.max_length=160", "data.max_eval_rows=4",
                                   "--bundle", str(FIXTURE), "--out", str(tmp_path / "runs"), "--json"])
    assert res.exit_code == 0, res.output
    trial = json.loads((tmp_path / "runs" / "verifier-baseline-s0" / "trial.json").read_text())["result"]
    assert 0 < trial["sft/rows_dropped"] < trial["sft/rows"], trial
    assert f"sft trained on {trial['sft/rows'] - trial['sft/rows_dropped']} of {trial['sft/rows']} rows" in res.output
    assert "raise train.max_length" in res.output
