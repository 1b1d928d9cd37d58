"""Grid expansion and naming (pure): role × variant × ablation × seed, per-variant recipes,
trial checks before any worker starts, sweep ids from the config hash (never a timestamp)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tracebridge.sweep import grid
from tracebridge.sweep.config import load_sweep_config

ROOT = Path(__file__).resolve().parents[2]
BID = "ab" * 32


@pytest.fixture(autouse=True)
def _in_root(monkeypatch):
    monkeypatch.chdir(ROOT)


def cfg(*ov):
    return load_sweep_config(None, ["bundle=s3://b/x", "train_config=configs/train/cpu_tiny.yaml", *ov])


def test_grid_is_the_full_cross_product():
    c = cfg("roles=[worker,verifier]", "seeds=[0,1]", "ablations.train.lr=[0.001,0.003]",
            "ablations.train.lora.r=[4,8,16]")
    specs = grid.expand_grid(c)
    assert len(specs) == 2 * 2 * 6 * 2
    assert len({s["trial_id"] for s in specs}) == len(specs)
    cells = {(s["role"], s["variant"], s["seed"], tuple(sorted(s["ablation"].items()))) for s in specs}
    assert len(cells) == len(specs)
    spec = grid.run_spec(specs[0], "/r.yaml")
    assert spec == {"config": "/r.yaml", "role": "worker", "variant": "baseline", "seed": 0,
                    "train.lora.r": 4, "train.lr": 0.001}


def test_recipes_per_variant_apply_overrides():
    c = cfg("overrides.train.max_steps=7", "variant_overrides.optimized.dpo.beta=0.3")
    r = grid.resolve_recipes(c)
    assert r["baseline"]["train"]["max_steps"] == 7 == r["optimized"]["train"]["max_steps"]
    assert r["optimized"]["dpo"]["beta"] == 0.3 and r["baseline"]["dpo"]["beta"] == 0.1
    assert r["optimized"]["variant"] == "optimized"


def test_trial_problems_found_before_running():
    c = cfg("ablations.train.lrr=[0.1]", "budget.max_trials=4", "seeds=[0,1,2]")
    probs = grid.check_trials(c, grid.resolve_recipes(c), grid.expand_grid(c))
    text = "\n".join(probs)
    # named with the sweep key the user wrote (before: only the recipe key, against the recipe YAML)
    assert "train.lrr: unknown key; did you mean 'train.lr'? (set by ablations.train.lrr)" in text
    assert "budget.max_trials=4: the grid would train 18 trials, for its 18 grid cells" in text
    # the typo once, its cells counted (before: one identical line per cell, 6 here, 24 for the weekly sweep)
    assert text.count("train.lrr: unknown key") == 1 and len(probs) == 2, probs
    assert ("6 grid cells (trial planner-baseline-s0-train.lrr_0.1 and 5 more; 18 trials with the seeds): train.lrr: "
            "unknown key; did you mean 'train.lr'? (set by ablations.train.lrr)") in probs
    c = cfg("ablations.dpo.beta=[0,0.1]")
    probs = grid.check_trials(c, grid.resolve_recipes(c), grid.expand_grid(c))
    assert probs == [("6 grid cells (trial planner-baseline-s0-dpo.beta_0 and 5 more): dpo.beta=0.0: must be > 0; the "
                      "paper uses 0.1 (set by ablations.dpo.beta)")]  # 3 roles x 2 variants, with beta=0 only
    c = cfg("roles=[verifier]", "variants=[baseline]", "ablations.dpo.beta=[0,0.1]")
    assert grid.check_trials(c, grid.resolve_recipes(c), grid.expand_grid(c)) == [
        "trial verifier-baseline-s0-dpo.beta_0: dpo.beta=0.0: must be > 0; the paper uses 0.1 (set by ablations.dpo.beta)"]


def test_max_trials_counts_the_trials_trained_not_the_grid_cells():
    """Cells that train the same model train once (``sweep.shared``): ``ablations.dpo.beta=[0.1,0.3]`` is 4 cells and
    3 trials (one baseline), and ``budget.max_trials=3`` refused it ("the grid has 4 trials")."""
    c = cfg("roles=[verifier]", "ablations.dpo.beta=[0.1,0.3]", "budget.max_trials=3")
    assert grid.check_trials(c, grid.resolve_recipes(c), grid.expand_grid(c)) == []
    c = cfg("roles=[verifier]", "ablations.dpo.beta=[0.1,0.3]", "budget.max_trials=2", "seeds=[0,1]")
    assert grid.check_trials(c, grid.resolve_recipes(c), grid.expand_grid(c)) == [
        ("budget.max_trials=2: the grid would train 6 trials, for its 8 grid cells (roles × variants × ablation cells × "
         "seeds; cells whose configs differ only in keys their variant never reads train once); raise the cap or shrink "
         "the grid")]


def test_sweep_id_follows_what_changes_results():
    base = grid.sweep_id(cfg(), grid.resolve_recipes(cfg()), BID)
    assert base == grid.sweep_id(cfg(), grid.resolve_recipes(cfg()), BID)  # deterministic, no timestamp
    assert base.startswith("sweep-") and base.endswith(BID[:12])
    same = cfg("cluster=http://127.0.0.1:9", "resources.cpu=2", "max_failures=5", "window.poll_s=1")
    assert grid.sweep_id(same, grid.resolve_recipes(same), BID) == base
    for ov in (["seeds=[1]"], ["overrides.train.lr=0.01"], ["train_config=configs/train/gpu.yaml"]):
        other = cfg(*ov)
        assert grid.sweep_id(other, grid.resolve_recipes(other), BID) != base, ov
    assert grid.sweep_id(cfg(), grid.resolve_recipes(cfg()), "cd" * 32) != base
    assert grid.submission_id(base, 2) == f"{base}-a2"


def test_mlflow_is_optional():
    import importlib.util

    from tracebridge.sweep.tune_run import max_concurrent, mlflow_callbacks, trial_resources

    cbs = mlflow_callbacks(cfg("mlflow=true"), "s")
    assert (len(cbs) == 1) == (importlib.util.find_spec("mlflow") is not None)
    assert mlflow_callbacks(cfg(), "s") == []
    gpu = cfg("resources.gpu=1", "resources.memory_gb=2")
    assert trial_resources(gpu) == {"cpu": 1.0, "gpu": 1.0, "memory": 2 * 2**30}
    assert max_concurrent(gpu, {"GPU": 4.0, "CPU": 32.0}) == 4  # trial limit from GPUs per trial
    assert max_concurrent(gpu, {"CPU": 4.0}) is None  # no GPU yet: the autoscaler adds them
    assert max_concurrent(cfg("budget.max_concurrent=1"), {"CPU": 8.0}) == 1
    train = cfg("resources.workers=2", "resources.gpu=1")
    assert trial_resources(train)["cpu"] < 0.1 and max_concurrent(train, {"GPU": 8.0}) == 4


def test_trials_tune_never_created_are_failures_with_the_reason():
    """Trials the grid generator had not created when the budget stopped the run (with budget.max_concurrent=1
    only one exists at a time) have no result: each is a failure naming the budget, not a bare "not run"."""
    from tracebridge.sweep.tune_run import not_started

    specs = [{"trial_id": t} for t in ("a", "b", "c", "d")]
    trials = [{"trial_id": "a"}]
    failures = [{"trial_id": "b", "error": "boom"}]
    why = "not finished within budget.max_hours=0.0001; `tracebridge submit ... --resume` continues it"
    got = not_started(specs, trials, failures, why)
    kind = {"error_type": "not_run"}
    assert got == [{"trial_id": t, "error": why, "error_message": why, **kind} for t in "cd"]
    assert not_started(specs, [], [], "not run") == [{"trial_id": t, "error": "not run", "error_message": "not run",
                                                      **kind} for t in "abcd"]
    assert not_started(specs, [{"trial_id": t} for t in "abcd"], [], "x") == []


def test_list_valued_ablations_check_and_name_their_trials():
    """``train.lora.target_modules`` takes lists: the check of each distinct cell keyed them as dict keys
    (TypeError: unhashable type: 'list') before any trial ran."""
    *_, specs = grid.load_checked("configs/sweep/smoke.yaml", [
        "bundle=s3://b/x", "ablations.train.lora.target_modules=[[q_proj,v_proj],[q_proj,k_proj,v_proj,o_proj]]"])
    assert len(specs) == 4 and len({s["trial_id"] for s in specs}) == 4
    assert grid.run_spec(specs[0], "/r.yaml")["train.lora.target_modules"] == ["q_proj", "v_proj"]


def test_variants_evaluated_differently_are_refused_before_any_trial():
    """Baseline and optimized are compared item by item: a ``variant_overrides`` eval split or row cap of one
    variant only showed as unpaired items in the report, after training, and a generation length or (with
    data.fit_context) a fitted prompt length of one variant only was compared without a word."""
    from tracebridge.config import ConfigError

    def problems(*ov):
        try:
            grid.load_checked("configs/sweep/demo.yaml", ["bundle=s3://b/x", *ov])
        except ConfigError as exc:
            return [p for p in exc.problems if p.startswith("variant_overrides: ")]
        return []

    assert problems("variant_overrides.optimized.data.eval_split=validation") == [
        ("variant_overrides: data.eval_split differs between the variants (baseline test, optimized validation); "
         "baseline and optimized are compared on the same evaluation: set it under overrides (every variant)")]
    assert "eval.max_new_tokens differs" in problems("variant_overrides.baseline.eval.max_new_tokens=8")[0]
    (fit,) = problems("variant_overrides.optimized.train.max_length=1024")  # demo fits prompts (data.fit_context)
    assert "prompt fit lengths" in fit and "baseline [2048, 2048], optimized [1024, 2048]" in fit
    assert problems("variant_overrides.optimized.dpo.beta=0.2", "variant_overrides.optimized.train.lr=0.003") == []
    assert problems("variant_overrides.optimized.train.max_length=1024", "overrides.eval.max_length=512") == []


def test_an_ablation_of_the_report_interval_settings_is_refused_before_any_trial():
    """The sweep's report computes every interval with one eval.n_boot and eval.ci: before, a sweep ablating
    them trained every cell again and was reported with the first variant's value only, the others nowhere."""
    from tracebridge.config import ConfigError

    def problems(*ov):
        try:
            grid.load_checked("configs/sweep/smoke.yaml", ["bundle=s3://b/x", *ov])
        except ConfigError as exc:
            return [p for p in exc.problems if p.startswith("ablations: ")]
        return []

    (p,) = problems("ablations.eval.n_boot=[100,1000]")
    assert p.startswith("ablations: eval.n_boot takes 2 values (100, 1000; set by ablations.eval.n_boot)")
    assert "set one value (overrides.eval.n_boot=N)" in p and "jobs/eval.py ... -- eval.n_boot=N" in p
    (p,) = problems("ablations.eval.ci=[0.9,0.95]", "ablations.train.lr=[0.001,0.003]")
    assert "eval.ci takes 2 values (0.9, 0.95; set by ablations.eval.ci)" in p
    assert problems("ablations.eval.n_boot=[500]", "overrides.eval.ci=0.9") == []  # one value: one setting
    assert problems("ablations.eval.max_new_tokens=[8,16]") == []  # scores items; both variants share each cell
