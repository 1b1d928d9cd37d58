"""``ablations.train.optim=[adamw_torch,adafactor]``: the optimizer was no config key (``common.base_args`` left it at
transformers' default), so a sweep could not compare optimizers. The grid expands one cell per optimizer, its check
passes, and each cell's trial trains on CPU with its own optimizer."""

from __future__ import annotations

import json
from pathlib import Path

from tracebridge.sweep import grid
from tracebridge.train.trial import run_trial

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "data" / "train_views"


def test_an_optimizer_ablation_expands_and_each_cell_trains_with_its_optimizer(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    _, recipes, specs = grid.load_checked("configs/sweep/smoke.yaml", [
        f"bundle={FIXTURE}", "variants=[baseline]", "ablations.train.optim=[adamw_torch,adafactor]",
        "overrides.train.max_steps=2", "overrides.train.warmup_ratio=0", "overrides.train.save_steps=0", "overrides.train.logging_steps=1",
        "overrides.data.max_eval_rows=4", "overrides.eval.n_boot=100"])
    assert [s["ablation"] for s in specs] == [{"train.optim": "adamw_torch"}, {"train.optim": "adafactor"}]
    assert [s["trial_id"] for s in specs] == ["verifier-baseline-s0-train.optim_adamw_torch",
                                              "verifier-baseline-s0-train.optim_adafactor"]
    path = str(grid.write_recipe(recipes["baseline"], tmp_path / "baseline.yaml"))
    losses = {}
    for s in specs:
        result = run_trial(grid.run_spec(s, path), FIXTURE, tmp_path / s["trial_id"])
        trial = json.loads((tmp_path / s["trial_id"] / "trial.json").read_text())
        assert trial["config"]["train"]["optim"] == s["ablation"]["train.optim"]
        assert result["sft/steps"] == 2
        losses[s["ablation"]["train.optim"]] = [p["loss"] for p in result["loss_curve"] if p.get("phase", "sft") == "sft"]
    a, b = losses["adamw_torch"], losses["adafactor"]
    assert a and b and a != b, losses  # the same data and init, another optimizer: another loss after the first step
