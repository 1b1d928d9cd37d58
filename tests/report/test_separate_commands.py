"""Baseline and optimized trained by separate ``tracebridge train`` commands pair in the report: the
``variant=``/``role=``/``seed=`` overrides are no ablation values (before, every trial's ablation held its
variant, nothing paired, the comparison was empty with no problem said, the winner line read "no significant
difference: +nan [+nan, +nan]" and a fake "variant" ablation grid was drawn). An optimized trial with no
baseline partner is a comparison problem, and a primary difference over nothing says nothing was compared."""

from __future__ import annotations

import numpy as np

from tests.report.test_report import fake_trial
from tracebridge.eval.stats import Estimate, decide_winner
from tracebridge.report.results import build_results
from tracebridge.train.trial import spec_ablation


def test_role_variant_and_seed_overrides_are_no_ablation():
    spec = {"config": "c.yaml", "variant": "optimized", "seed": 1,
            "overrides": ["role=worker", "variant=optimized", "seed=1", "train.max_steps=4"]}
    assert spec_ablation(spec) == {"train.max_steps": "4"}
    assert spec_ablation({"overrides": {"variant": "baseline", "train.lr": 1e-4}, "train.lora.r": 8}) == {
        "train.lr": 1e-4, "train.lora.r": 8}


def _pair(tmp, ablation_of_variant: bool, seeds: tuple[int, int] = (0, 0)):
    rng = np.random.default_rng(0)
    base = (rng.random(200) < 0.5).astype(float)
    better = base.copy()
    better[np.where(base == 0)[0][:40]] = 1.0
    out = []
    for variant, acc, seed in (("baseline", base, seeds[0]), ("optimized", better, seeds[1])):
        t = fake_trial(tmp, variant, seed, acc, 1e-3)
        # as trial.json files written before the fix hold them: one command per variant
        t["ablation"] = {"train.max_steps": "4", **({"variant": variant, "seed": str(seed)} if ablation_of_variant else {})}
        out.append(t)
    return out


def test_trials_of_separate_commands_pair_even_from_old_trial_json(tmp_path):
    block = build_results(_pair(tmp_path, ablation_of_variant=True), n_boot=300)["roles"]["verifier"]
    assert block["comparison"]["accuracy"]["n"] == 200 and block["comparison_problems"] == []
    assert block["winner"] == "optimized", block["winner_reason"]
    assert block["ablations"] == []  # no "variant" (or "seed") grid


def test_an_optimized_trial_without_a_baseline_partner_is_a_problem(tmp_path):
    block = build_results(_pair(tmp_path, ablation_of_variant=False, seeds=(0, 1)), n_boot=300)["roles"]["verifier"]
    assert block["comparison"] == {}
    (problem,) = block["comparison_problems"]
    assert problem.startswith("optimized seed 1, train.max_steps=4: no baseline trial with the same seed")
    assert "baseline seeds: 0" in problem
    assert block["winner"] is None and block["winner_reason"].startswith("nothing was compared; ")
    assert "nan" not in block["winner_reason"]


def test_a_primary_difference_over_no_items_compares_nothing():
    nothing = Estimate(float("nan"), float("nan"), float("nan"), 0)
    v = decide_winner(nothing, {}, {})
    assert v.winner is None and v.reason.startswith("nothing was compared") and "nan" not in v.reason


def test_list_valued_ablations_pair_and_make_a_grid(tmp_path):
    """A sweep over ``train.lora.target_modules`` (list values): the pairing keyed trials by their values
    (TypeError: unhashable type: 'list'); now by the values' JSON."""
    trials = []
    for i, modules in enumerate((["q_proj", "v_proj"], ["q_proj", "k_proj", "v_proj", "o_proj"])):
        for t in _pair(tmp_path / str(i), ablation_of_variant=False):
            t["ablation"] = {"train.lora.target_modules": list(modules)}
            trials.append(t)
    block = build_results(trials, n_boot=100)["roles"]["verifier"]
    assert block["comparison"]["accuracy"]["n"] == 400 and block["comparison_problems"] == []
    (g,) = block["ablations"]
    assert g["key"] == "train.lora.target_modules" and len(g["rows"]) == 2
