"""A ``dpo.*`` ablation trained the same baseline once per ablation cell: a baseline runs no DPO, so
``verifier-baseline-s0-dpo.beta_0.1`` and ``..._0.3`` trained and evaluated the same model twice (same losses,
same metrics). The sweep now trains it once (``verifier-baseline-s0-dpo.beta_shared``) and gives each cell its
result, marked ``trained_as``; the report pairs every optimized cell with it as before and counts its time once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tracebridge.report import verify_report, write_report
from tracebridge.sweep import grid
from tracebridge.sweep.shared import fan_out, share_trials

ROOT = Path(__file__).resolve().parents[2]
BUNDLE = ROOT / "tests" / "data" / "train_views"


def grid_of(*overrides: str):
    _, recipes, specs = grid.load_checked(str(ROOT / "configs/sweep/smoke.yaml"), [f"bundle={BUNDLE}", *overrides])
    return recipes, specs


def test_a_dpo_ablation_trains_each_baseline_once():
    recipes, specs = grid_of("ablations.dpo.beta=[0.05,0.1,0.5]", "seeds=[0,1]")
    train, members = share_trials(recipes, specs)
    assert (len(specs), len(train)) == (12, 8)  # before: 12 trained, 6 of them baselines, 4 of those repeats
    assert sorted(members) == ["verifier-baseline-s0-dpo.beta_shared", "verifier-baseline-s1-dpo.beta_shared"]
    assert [m["trial_id"] for m in members["verifier-baseline-s0-dpo.beta_shared"]] == [
        "verifier-baseline-s0-dpo.beta_0.05", "verifier-baseline-s0-dpo.beta_0.1", "verifier-baseline-s0-dpo.beta_0.5"]
    assert sum(s["variant"] == "optimized" for s in train) == 6  # DPO reads dpo.beta: every cell trains


def test_only_keys_the_baseline_never_reads_are_shared():
    recipes, specs = grid_of("ablations.dpo.beta=[0.05,0.1]", "ablations.train.lr=[1e-3,3e-3]")
    train, members = share_trials(recipes, specs)
    assert len(train) == 6 and sorted(members) == ["verifier-baseline-s0-dpo.beta_shared-train.lr_0.001",
                                                   "verifier-baseline-s0-dpo.beta_shared-train.lr_0.003"]
    assert share_trials(*grid_of("ablations.train.lr=[1e-3,3e-3]"))[1] == {}
    # the curation keys: the baseline trains on the raw rows
    assert list(share_trials(*grid_of("ablations.data.recovery_weight=[1,3]"))[1]) == [
        "verifier-baseline-s0-data.recovery_weight_shared"]
    # dpo.max_length is what evaluation fits the baseline's preference pairs to, with fit_context on
    assert share_trials(*grid_of("ablations.dpo.max_length=[512,1024]", "overrides.data.fit_context=true"))[1] == {}
    assert len(share_trials(*grid_of("ablations.dpo.max_length=[512,1024]"))[1]) == 1


def test_the_optimized_variant_of_a_role_without_pairs_is_shared_too():
    """The fixture bundle has no planner_pref_pairs: an optimized planner trial runs no DPO, so a dpo.* ablation
    trained it once per cell as well; the verifier (pairs in the bundle) still trains each cell."""
    from tracebridge.sweep.shared import roles_without_pairs

    assert roles_without_pairs(BUNDLE) == {"planner"}
    recipes, specs = grid_of("ablations.dpo.beta=[0.1,0.3]", "roles=[planner,verifier]")
    train, members = share_trials(recipes, specs, roles_without_pairs(BUNDLE))
    assert (len(specs), len(train)) == (8, 5)
    assert sorted(members) == ["planner-baseline-s0-dpo.beta_shared", "planner-optimized-s0-dpo.beta_shared",
                               "verifier-baseline-s0-dpo.beta_shared"]
    assert len(share_trials(recipes, specs)[0]) == 6  # not told: the optimized planner cells train each


def test_a_shared_result_or_failure_is_each_cells_and_its_time_counts_once(tmp_path):
    recipes, specs = grid_of("ablations.dpo.beta=[0.1,0.3]", "variants=[baseline]")
    _, members = share_trials(recipes, specs)
    (tid,) = members
    items = tmp_path / "eval_items.json"
    items.write_text(json.dumps({"role": "verifier", "item_ids": [0, 1], "items": {"accuracy": [[1.0, 0.0], [1.0, 1.0]]}}))
    res = {"trial_id": tid, "role": "verifier", "variant": "baseline", "seed": 0, "ablation": {"dpo.beta": 0.1},
           "verifier/accuracy": 0.5, "eval_items_path": str(items), "wall_s": 3600.0,
           "resources": {"gpus": 1.0, "gpu_type": "L4", "node": "n1"}}
    trials, failed = fan_out([res], [], members)
    assert [(t["trial_id"], t["ablation"], t["trained_as"]) for t in trials] == [
        ("verifier-baseline-s0-dpo.beta_0.1", {"dpo.beta": 0.1}, tid),
        ("verifier-baseline-s0-dpo.beta_0.3", {"dpo.beta": 0.3}, tid)]
    man = write_report(trials, tmp_path / "rep", n_boot=100)
    assert man["gpu_hours"] == pytest.approx(1.0) and man["trial_wall_s"] == pytest.approx(3600.0)  # not 2.0, 7200
    assert man["cluster"]["nodes"]["n1"]["trials"] == 1 and verify_report(tmp_path / "rep") == []
    html = (tmp_path / "rep" / "report.html").read_text()
    assert f"<code>{tid}</code> for" in html
    _, failed = fan_out([], [{"trial_id": tid, "error": "boom"}], members)
    assert [f["trial_id"] for f in failed] == ["verifier-baseline-s0-dpo.beta_0.1", "verifier-baseline-s0-dpo.beta_0.3"]
    # a sweep started before sharing and resumed: its cells' own results stay, the shared one adds nothing
    own = [{**res, "trial_id": m["trial_id"]} for m in members[tid]]
    assert fan_out(own, [{"trial_id": tid, "error": "not run"}], members) == (own, [])


@pytest.mark.slow
def test_the_sweep_job_trains_the_shared_baseline_once(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env.update(LITELLM_LOCAL_MODEL_COST_MAP="True", OMP_NUM_THREADS="1")
    res = subprocess.run([sys.executable, "jobs/sweep.py", "configs/sweep/smoke.yaml", f"bundle={BUNDLE}",
                          f"storage={tmp_path}/storage", f"work_dir={tmp_path}/work", "ablations.dpo.beta=[0.1,0.3]",
                          "max_failures=0"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=480, check=False)
    assert res.returncode == 0, res.stderr[-4000:]
    summary = json.loads(res.stdout.strip().splitlines()[-1])
    assert (summary["grid"], summary["trained"], summary["trials"]) == (4, 3, 4)
    shared = "verifier-baseline-s0-dpo.beta_shared"
    assert summary["shared"] == {shared: ["verifier-baseline-s0-dpo.beta_0.1", "verifier-baseline-s0-dpo.beta_0.3"]}
    tune_dirs = sorted(p.name for p in (tmp_path / "storage" / summary["sweep_id"]).iterdir() if p.is_dir())
    assert tune_dirs == [shared, "verifier-optimized-s0-dpo.beta_0.1", "verifier-optimized-s0-dpo.beta_0.3"]
    report = tmp_path / "storage" / "reports" / summary["sweep_id"]
    results = json.loads((report / "results.json").read_text())
    base = [t for t in results["trials"] if t["variant"] == "baseline"]
    assert [(t["trial_id"], t["trained_as"]) for t in base] == [
        ("verifier-baseline-s0-dpo.beta_0.1", shared), ("verifier-baseline-s0-dpo.beta_0.3", shared)]
    block = results["roles"]["verifier"]
    assert block["comparison_problems"] == [] and block["variants"]["baseline"]["trials"] == 2  # both cells paired
    assert verify_report(report) == []
    # jobs/eval.py re-evaluates the 3 trained checkpoints and reports the 4 cells, as the sweep did
    res = subprocess.run([sys.executable, "jobs/eval.py", "configs/sweep/smoke.yaml", f"bundle={BUNDLE}",
                          f"storage={tmp_path}/storage", f"work_dir={tmp_path}/work", "ablations.dpo.beta=[0.1,0.3]",
                          "max_failures=0", "--", "eval.n_boot=300"], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=480, check=False)
    assert res.returncode == 0, res.stderr[-4000:]
    again = json.loads(Path(json.loads(res.stdout.strip().splitlines()[-1])["report_uri"], "results.json").read_text())
    assert sorted((t["trial_id"], t.get("trained_as")) for t in again["trials"]) == sorted(
        (t["trial_id"], t.get("trained_as")) for t in results["trials"])
    assert again["roles"]["verifier"]["comparison_problems"] == []


def test_the_fit_length_a_baseline_keeps_is_read_off_the_resolved_recipe_as_the_typed_config_gives_it():
    """``result_config`` read ``dpo.max_length``'s fit length by building the typed config of every baseline cell
    (0.25 s a cell: 13 s of a 72-cell submit); it now reads the resolved recipe as it is, the same value whether
    evaluation fits to it or not, and a partial config still gets its schema's defaults."""
    from omegaconf import OmegaConf

    from tracebridge.eval.offline import fit_lengths
    from tracebridge.sweep.shared import result_config
    from tracebridge.train.config import TrainConfig

    recipes, specs = grid_of("ablations.data.fit_context=[true,false]", "ablations.eval.max_length=[0,96]")
    seen = set()
    for s in specs:
        cfg = grid.trial_config(recipes, s)
        typed = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(TrainConfig), cfg))
        if s["variant"] == "baseline":
            seen.add(result_config(cfg)["eval pairs fit length"])
            assert result_config(cfg)["eval pairs fit length"] == fit_lengths(typed)[1], s["trial_id"]
    assert len(seen) == 3  # 0 (not fitted), 96 (eval.max_length) and dpo.max_length
    partial = {"variant": "baseline", "role": "verifier", "dpo": {"max_length": 77}}
    defaults = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(TrainConfig), partial))
    assert result_config(partial)["eval pairs fit length"] == fit_lengths(defaults)[1]
