"""A report of a trial whose loss went NaN, or that evaluated no item, says so. Before, the loss chart's line just
stopped at the last finite loss (a line of NaN losses only: a legend entry with no line) and the trial's metrics
were tabled and could win with no word; a trial with no evaluated item was left out of the pooled items silently.
Now each role lists them (``trial_notes`` in results.json, "Trials to look at" on the page) and the loss legend
counts the NaN losses, and a variant with a diverged trial is not called the winner; a legend name longer than the old fixed 170 px is no longer cut off."""

from __future__ import annotations

import json
import re

import numpy as np

from tests.report.test_report import fake_trial
from tracebridge.report import verify_report, write_report
from tracebridge.report.svg import line_chart


def test_nan_loss_and_no_evaluated_item_are_listed_and_the_plots_stay_readable(tmp_path):
    rng = np.random.default_rng(0)
    base = fake_trial(tmp_path / "i", "baseline", 0, (rng.random(40) < 0.5).astype(float), 1e-3)
    opt = fake_trial(tmp_path / "i", "optimized", 0, (rng.random(40) < 0.6).astype(float), 1e-3)
    opt["loss_curve"] = ([{"phase": "sft", "step": s, "loss": 3.0 if s < 7 else float("nan")} for s in range(1, 20, 2)]
                         + [{"phase": "dpo", "step": s, "loss": float("nan")} for s in (1, 4, 7)])
    empty = tmp_path / "empty" / "eval_items.json"
    empty.parent.mkdir()
    empty.write_text(json.dumps({"role": "verifier", "item_ids": [], "items": {}}))
    none = {**fake_trial(tmp_path / "j", "baseline", 1, np.ones(3), 1e-3), "eval_items_path": str(empty),
            "verifier/accuracy": None, "verifier/eval_rows": 0}
    write_report([base, opt, none], tmp_path / "rep", n_boot=100)
    assert verify_report(tmp_path / "rep") == []
    notes = json.loads((tmp_path / "rep" / "results.json").read_text())["roles"]["verifier"]["trial_notes"]
    assert notes == [
        "baseline seed 1, train.lr=0.001: no evaluated item (verifier/eval_rows 0): it adds nothing to the metrics",
        ("optimized seed 0, train.lr=0.001: sft loss not finite (NaN or inf) from step 7 (10 of 13 logged losses): "
         "the model diverged, its metrics measure that model")]
    html = (tmp_path / "rep" / "report.html").read_text()
    assert "Trials to look at before reading the tables and plots" in html and "from step 7" in html
    svgs = {re.search(r"<title>([^<]*)</title>", s).group(1): s for s in re.findall(r"<svg.*?</svg>", html, re.DOTALL)}
    assert {"verifier: SFT loss", "verifier: DPO loss"} <= set(svgs)  # both plots there, NaN curves and all
    assert "optimized s0 train.lr=0.001 (loss NaN at 7 of 10)" in svgs["verifier: SFT loss"]
    assert "optimized s0 train.lr=0.001 (loss NaN at 3 of 3)" in svgs["verifier: DPO loss"]
    assert "nan" not in svgs["verifier: SFT loss"].lower().replace("loss nan at", "")  # no NaN coordinate


def test_a_report_of_finite_trials_has_no_notes(tmp_path):
    rng = np.random.default_rng(1)
    trials = [fake_trial(tmp_path, v, 0, (rng.random(30) < 0.5).astype(float), 1e-3) for v in ("baseline", "optimized")]
    write_report(trials, tmp_path / "rep", n_boot=100)
    assert json.loads((tmp_path / "rep" / "results.json").read_text())["roles"]["verifier"]["trial_notes"] == []
    assert "Trials to look at" not in (tmp_path / "rep" / "report.html").read_text()


def test_the_loss_legend_is_as_wide_as_its_longest_name():
    name = "verifier-baseline-s0-dpo.beta_shared-train.lr_0.001"
    svg = line_chart([(name, [(1, 2.0), (2, 1.0)])], "loss")
    width = float(re.search(r'width="([0-9.]+)"', svg).group(1))
    text_x = float(re.search(r'<text x="([0-9.]+)"[^>]*>' + re.escape(name), svg).group(1))
    assert width - text_x >= 6 * len(name)  # before: 690 wide, the name cut after ~25 characters


def test_a_variant_with_a_diverged_trial_is_not_called_the_winner(tmp_path):
    """Optimized is far better on accuracy (0.9 vs 0.3 over 200 items), which wins it the role when its losses are
    finite; once one of its trials logs a NaN loss, the role has no winner and the reason names that trial."""
    rng = np.random.default_rng(2)
    base = fake_trial(tmp_path / "i", "baseline", 0, (rng.random(200) < 0.3).astype(float), 1e-3)
    opt = fake_trial(tmp_path / "i", "optimized", 0, (rng.random(200) < 0.9).astype(float), 1e-3)
    write_report([base, opt], tmp_path / "fine", n_boot=200)
    fine = json.loads((tmp_path / "fine" / "results.json").read_text())["roles"]["verifier"]
    assert fine["winner"] == "optimized"
    opt["loss_curve"] = [{"phase": "sft", "step": 1, "loss": 2.0}, {"phase": "sft", "step": 3, "loss": float("inf")}]
    write_report([base, opt], tmp_path / "rep", n_boot=200)
    block = json.loads((tmp_path / "rep" / "results.json").read_text())["roles"]["verifier"]
    assert block["winner"] is None
    assert block["winner_reason"].startswith("optimized would win (")
    assert "seed 0, train.lr=0.001 diverged (loss not finite): no winner is called" in block["winner_reason"]
