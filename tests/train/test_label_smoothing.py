"""``dpo.label_smoothing``: TRL's label smoothing was no config key, so ``dpo.loss_type=exo_pair`` (a loss the
config accepts) failed every optimized trial at its first DPO step, after SFT ("Label smoothing must be greater
than 0.0 when using 'exo_pair' loss"), and ``robust`` trained exactly the sigmoid loss: a sweep of
``dpo.loss_type=[sigmoid,robust]`` compared a loss with itself. The key reaches DPOConfig, and the combinations
TRL refuses or ignores are refused before anything trains, naming the key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import tracebridge.cli  # noqa: F401 - registers the command modules
from tracebridge.cli.app import app
from tracebridge.config import ConfigError
from tracebridge.train.config import load_train_config

ROOT = Path(__file__).resolve().parents[2]
CFG = str(ROOT / "configs" / "train" / "cpu_tiny.yaml")
FIXTURE = ROOT / "tests" / "data" / "train_views"
FAST = ["train.max_steps=2", "dpo.max_steps=2", "train.save_steps=0", "eval.n_boot=100", "data.max_eval_rows=8"]


def problems(*overrides: str) -> list[str]:
    with pytest.raises(ConfigError) as e:
        load_train_config(CFG, list(overrides))
    return e.value.problems


def test_loss_types_that_need_or_ignore_label_smoothing_are_refused_before_training(tmp_path):
    assert problems("dpo.loss_type=exo_pair") == [
        "dpo.loss_type=exo_pair: needs dpo.label_smoothing > 0 (EXO's epsilon, typical 1e-3)"]
    assert problems("dpo.loss_type=robust") == [
        ("dpo.loss_type=robust: needs dpo.label_smoothing > 0 (the chance a label is flipped, typical 0.1; at 0 "
        "robust is the sigmoid loss)")]
    assert problems("dpo.label_smoothing=0.1") == [
        ("dpo.label_smoothing=0.1: not read by dpo.loss_type=sigmoid (only by exo_pair, robust, aot, aot_unpaired); "
        "set it to 0 or use one of those losses")]
    assert problems("dpo.loss_type=robust", "dpo.label_smoothing=0.5") == [
        "dpo.label_smoothing=0.5: must be in [0, 0.5) (robust DPO: typical 0.1; exo_pair: 1e-3)"]
    assert load_train_config(CFG, ["dpo.loss_type=robust", "dpo.label_smoothing=0.1"]).dpo.label_smoothing == 0.1
    assert load_train_config(None).dpo.label_smoothing == 0.0  # TRL's default, what every trial trained with
    # the command: exit 2 naming it, no trial folder (before: SFT trained, then every try of the trial failed)
    res = CliRunner().invoke(app, ["train", CFG, *FAST, "dpo.loss_type=exo_pair", "--variants", "optimized",
                                   "--bundle", str(FIXTURE), "--out", str(tmp_path / "runs")])
    assert res.exit_code == 2 and "dpo.loss_type=exo_pair: needs dpo.label_smoothing > 0" in res.stderr, res.output
    assert not (tmp_path / "runs" / "verifier-optimized-s0").exists()


def test_exo_pair_with_label_smoothing_trains_its_dpo_phase(tmp_path):
    res = CliRunner().invoke(app, ["train", CFG, *FAST, "dpo.loss_type=exo_pair", "dpo.label_smoothing=0.001",
                                   "--variants", "optimized", "--bundle", str(FIXTURE), "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    trial = json.loads((tmp_path / "verifier-optimized-s0" / "trial.json").read_text())
    assert trial["config"]["dpo"]["label_smoothing"] == 0.001 and trial["result"]["dpo/steps"] == 2


def test_an_upgrade_keeps_sweep_ids_while_label_smoothing_is_0():
    from tracebridge.sweep import grid
    from tracebridge.sweep.config import load_sweep_config

    cfg = load_sweep_config(str(ROOT / "configs/sweep/smoke.yaml"), [f"bundle={FIXTURE}", "storage=/tmp/tb-storage"])
    recipes = grid.resolve_recipes(cfg)
    assert all(r["dpo"]["label_smoothing"] == 0.0 for r in recipes.values())
    bare = {v: {**r, "dpo": {k: x for k, x in r["dpo"].items() if k != "label_smoothing"}} for v, r in recipes.items()}
    assert grid.config_digest(cfg, recipes) == grid.config_digest(cfg, bare)  # as the version before the key hashed
