"""The optimizer of a recipe as config keys (``train.optim``, ``adam_beta1``, ``adam_beta2``, ``adam_epsilon``,
``neftune_noise_alpha``, and the same under ``dpo.``): ``common.base_args`` left them at transformers' values, so a
sweep could not vary the optimizer, its betas or epsilon, nor turn NEFTune on. At their defaults the trainer
arguments are exactly those built before; a bad value is refused before training, naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

import tracebridge.cli  # noqa: F401 - registers the command modules
from tracebridge.cli.app import app
from tracebridge.config import ConfigError
from tracebridge.train.config import load_train_config
from tracebridge.train.trl_choices import OPTIMIZERS, OPTIMIZERS_REFUSED

ROOT = Path(__file__).resolve().parents[2]
CFG = str(ROOT / "configs" / "train" / "cpu_tiny.yaml")
NEW = ("optim", "adam_beta1", "adam_beta2", "adam_epsilon", "neftune_noise_alpha")


def problems(*overrides: str) -> list[str]:
    with pytest.raises(ConfigError) as e:
        load_train_config(CFG, list(overrides))
    return e.value.problems


@pytest.mark.parametrize("path", [None, CFG, str(ROOT / "configs" / "train" / "gpu.yaml")])
def test_the_defaults_build_the_trainer_arguments_built_before_the_keys(path, tmp_path):
    """Results of existing configs do not change: the SFTConfig and DPOConfig built with the new keys at their
    defaults equal those built from the arguments ``base_args`` gave before (without them: transformers' values)."""
    from trl import DPOConfig, SFTConfig

    from tracebridge.train.common import base_args

    cfg = load_train_config(path)
    for rc, cls in ((cfg.train, SFTConfig), (cfg.dpo, DPOConfig)):
        kw = base_args(rc, tmp_path, 3)
        assert set(NEW) <= set(kw)
        before = {k: v for k, v in kw.items() if k not in NEW}
        assert cls(**kw).to_dict() == cls(**before).to_dict()


def test_each_key_reaches_the_trainer(tmp_path):
    from trl import DPOConfig, SFTConfig

    from tracebridge.train.common import base_args

    cfg = load_train_config(CFG, ["train.optim=adafactor", "train.adam_beta1=0.8", "train.adam_beta2=0.95",
                                  "train.adam_epsilon=1e-6", "train.neftune_noise_alpha=5", "dpo.optim=sgd"])
    sft = SFTConfig(**base_args(cfg.train, tmp_path, 0))
    assert (sft.optim, sft.adam_beta1, sft.adam_beta2, sft.adam_epsilon, sft.neftune_noise_alpha) == (
        "adafactor", 0.8, 0.95, 1e-6, 5.0)
    assert DPOConfig(**base_args(cfg.dpo, tmp_path, 0)).optim == "sgd"


def test_bad_optimizer_values_are_refused_before_training_naming_the_key(tmp_path):
    usable = ", ".join(o for o in OPTIMIZERS if o not in OPTIMIZERS_REFUSED)
    assert problems("train.optim=adamw") == [f"train.optim=adamw: not a transformers optimizer; use one of {usable}"]
    assert problems("dpo.optim=galore_adamw") == [
        f"dpo.optim=galore_adamw: needs optim_target_modules, which recipes do not pass; use one of {usable}"]
    assert problems("train.adam_beta1=1", "dpo.adam_beta2=-0.1", "train.adam_epsilon=0",
                    "dpo.neftune_noise_alpha=0") == [
        "train.adam_beta1=1.0: must be in [0, 1) (typical 0.9)",
        "train.adam_epsilon=0.0: must be > 0 (typical 1e-8)",
        "dpo.adam_beta2=-0.1: must be in [0, 1) (typical 0.999)",
        "dpo.neftune_noise_alpha=0.0: must be > 0 (typical 5), or null for no noise"]
    res = CliRunner().invoke(app, ["train", CFG, "train.optim=adamw", "--variants", "baseline", "--bundle",
                                   str(ROOT / "tests" / "data" / "train_views"), "--out", str(tmp_path / "runs")])
    assert res.exit_code == 2 and "train.optim=adamw: not a transformers optimizer; use one of adamw_torch," in res.stderr
    assert not (tmp_path / "runs" / "verifier-baseline-s0").exists()


def test_the_optimizer_list_matches_the_installed_transformers():
    from transformers.training_args import OptimizerNames

    assert set(OPTIMIZERS) == {o.value for o in OptimizerNames}


def test_an_upgrade_keeps_sweep_ids_while_the_keys_hold_their_defaults():
    from tracebridge.sweep import grid
    from tracebridge.sweep.config import load_sweep_config

    cfg = load_sweep_config(str(ROOT / "configs/sweep/smoke.yaml"), ["bundle=s3://b/x", "storage=/tmp/tb-storage"])
    recipes = grid.resolve_recipes(cfg)
    bare = {v: {**r, **{s: {k: x for k, x in r[s].items() if k not in NEW} for s in ("train", "dpo")}}
            for v, r in recipes.items()}
    assert grid.config_digest(cfg, recipes) == grid.config_digest(cfg, bare)  # as the version before the keys hashed
    other = load_sweep_config(str(ROOT / "configs/sweep/smoke.yaml"),
                              ["bundle=s3://b/x", "storage=/tmp/tb-storage", "overrides.train.optim=adamw_torch"])
    assert grid.config_digest(other, grid.resolve_recipes(other)) != grid.config_digest(cfg, recipes)
