"""Every YAML under configs/train and configs/model loads and validates; bad values are all
reported at once; the model file replaces the model block."""

from __future__ import annotations

from pathlib import Path

import pytest

from tracebridge.config import ConfigError, load_config, schema_for
from tracebridge.train.config import ModelConfig, TrainConfig, Variant, load_train_config

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("path", sorted((ROOT / "configs/train").glob("*.yaml")) +
                         sorted((ROOT / "configs/model").glob("*.yaml")), ids=lambda p: p.name)
def test_every_config_loads_and_starts_with_a_header(path):
    schema = schema_for(path)
    assert schema in (TrainConfig, ModelConfig)
    load_config(schema, path)
    head = path.read_text().splitlines()[:6]
    assert head[0].startswith("#") and any("override" in h.lower() for h in head)


def test_model_file_replaces_the_model_block_and_overrides_win():
    cfg = load_train_config(str(ROOT / "configs/train/cpu_tiny.yaml"), ["model.num_hidden_layers=3"],
                            str(ROOT / "configs/model/qwen2.5-0.5b.yaml"))
    assert cfg.model.name == "qwen2.5-0.5b" and cfg.model.hidden_size == 896 and cfg.model.num_hidden_layers == 3
    assert cfg.train.max_steps == 400  # the rest of the train file stays


def test_all_problems_are_reported_together():
    with pytest.raises(ConfigError) as e:
        load_train_config(None, ["role=critic", "variant=best", "train.lr=0", "dpo.beta=0",
                                 "eval.verifier_method=vote", "data.recovery_weight=0"])
    text = str(e.value)
    for key in ("role=critic", "variant=best", "train.lr=0", "dpo.beta=0", "eval.verifier_method", "data.recovery_weight"):
        assert key in text


def test_variants_carry_their_behaviour():
    assert not Variant("baseline").curates and not Variant("baseline").runs_dpo
    assert Variant("optimized").curates and Variant("optimized").runs_dpo
