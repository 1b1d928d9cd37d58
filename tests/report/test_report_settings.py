"""The report's intervals are the trials' own: ``tracebridge report`` takes ``eval.n_boot``/``eval.ci`` from
the trials' config (before: always 1000 and 0.95, so its intervals did not match trial.json's), or from
``--n-boot``/``--ci``; trials evaluated differently with no option is an error. The page titles the interval
plot with that coverage (before: always "95%"), and the two-key ablation heatmap leaves NaN trials out as the
one-key grid does (before: one NaN trial made its cell NaN, shown as "–")."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from tests.report.test_report import fake_trial
from tracebridge.cli import app
from tracebridge.report import write_report
from tracebridge.report.results import ablation_grids


def trial_folders(root: Path, evals: list[dict]) -> Path:
    rng = np.random.default_rng(0)
    acc = (rng.random(60) < 0.5).astype(float)
    for variant, ev in zip(("baseline", "optimized"), evals):
        r = fake_trial(root / "items", variant, 0, acc, 1e-3)
        d = root / "runs" / f"verifier-{variant}-s0"
        d.mkdir(parents=True)
        (d / "trial.json").write_text(json.dumps({"result": r, "config": {"eval": ev}}))
    return root / "runs"


def report(runs: Path, out: Path, *opts: str):
    return CliRunner().invoke(app, ["report", str(runs), "--out", str(out), *opts])


def test_report_takes_the_trials_interval_settings(tmp_path):
    runs = trial_folders(tmp_path, [{"n_boot": 200, "ci": 0.9}] * 2)
    res = report(runs, tmp_path / "rep")
    assert res.exit_code == 0, res.output
    results = json.loads((tmp_path / "rep" / "results.json").read_text())
    assert (results["n_boot"], results["ci"]) == (200, 0.9)
    assert "metrics with 90% intervals" in (tmp_path / "rep" / "report.html").read_text()
    res = report(runs, tmp_path / "rep2", "--n-boot", "300", "--ci", "0.8")
    assert res.exit_code == 0, res.output
    results = json.loads((tmp_path / "rep2" / "results.json").read_text())
    assert (results["n_boot"], results["ci"]) == (300, 0.8)


def test_trials_evaluated_differently_need_an_option(tmp_path):
    runs = trial_folders(tmp_path, [{"n_boot": 200, "ci": 0.9}, {"n_boot": 500, "ci": 0.9}])
    res = report(runs, tmp_path / "rep")
    assert res.exit_code == 2 and "different eval.n_boot (200, 500): pass --n-boot" in res.output
    assert not (tmp_path / "rep").exists()
    assert report(runs, tmp_path / "rep", "--n-boot", "200").exit_code == 0
    res = report(runs, tmp_path / "rep3", "--ci", "1.5")
    assert res.exit_code == 2 and "--ci 1.5: must be in [0.5, 1)" in res.output


def test_write_report_titles_the_intervals_with_its_coverage(tmp_path):
    acc = (np.random.default_rng(1).random(40) < 0.5).astype(float)
    write_report([fake_trial(tmp_path, "baseline", 0, acc, 1e-3)], tmp_path / "rep", n_boot=100, ci=0.8)
    html = (tmp_path / "rep" / "report.html").read_text()
    assert "metrics with 80% intervals" in html and "95%" not in html


def test_two_key_heatmap_leaves_nan_trials_out():
    ts = [{"variant": "baseline", "seed": s, "verifier/accuracy": v, "ablation": {"train.lr": lr, "train.lora.r": r}}
          for s, v in ((0, 0.5), (1, float("nan"))) for lr in (1e-3, 3e-3) for r in (4, 8)]
    grids = ablation_grids("verifier", ts)
    two = next(g for g in grids if "×" in g["key"])
    assert two["values"] == [[0.5, 0.5], [0.5, 0.5]]
