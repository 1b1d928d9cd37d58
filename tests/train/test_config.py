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


def test_out_of_range_recipe_lora_closed_loop_and_model_values_are_each_named():
    """Values these keys cannot take were accepted and failed mid-trial or trained silently wrong
    (a negative weight decay, LoRA adapters on no layer, a closed loop of no steps, rope_theta 0)."""
    bad = {"train.weight_decay=-0.1": "train.weight_decay=-0.1: must be >= 0",
           "dpo.lora.alpha=0": "dpo.lora.alpha=0: must be > 0",
           "dpo.lora.dropout=1.0": "dpo.lora.dropout=1.0: must be in [0, 1)",
           "dpo.lora.target_modules=[]": "dpo.lora.target_modules=[]: no layer would get an adapter",
           "eval.closed_loop.max_steps=0": "eval.closed_loop.max_steps=0: must be > 0 (default 6)",
           "eval.closed_loop.max_new_tokens=-1": "eval.closed_loop.max_new_tokens=-1: must be > 0",
           "model.vocab_size=-1": "model.vocab_size=-1: must be >= 0 (0 = the tokenizer's size)",
           "model.head_dim=-8": "model.head_dim=-8: must be >= 0",
           "model.rope_theta=0": "model.rope_theta=0.0: must be > 0"}
    with pytest.raises(ConfigError) as e:
        load_train_config(str(ROOT / "configs/train/cpu_tiny.yaml"),
                          ["dpo.lora.enabled=true", "eval.closed_loop.enabled=true", *bad])
    assert len(e.value.problems) == len(bad), e.value.problems
    for expect in bad.values():
        assert any(p.startswith(expect) for p in e.value.problems), (expect, e.value.problems)
    # the same LoRA values are nobody's business while adapters are off, and so is the closed loop's
    cfg = load_train_config(str(ROOT / "configs/train/cpu_tiny.yaml"),
                            ["dpo.lora.alpha=0", "dpo.lora.target_modules=[]", "eval.closed_loop.max_steps=0"])
    assert cfg.dpo.lora.alpha == 0 and not cfg.dpo.lora.enabled


def test_max_grad_norm_is_a_recipe_key_that_reaches_the_trainer(tmp_path):
    """Gradient clipping was transformers' fixed 1.0: a sweep could not vary it (train.max_grad_norm)."""
    from trl import DPOConfig, SFTConfig

    from tracebridge.train.common import base_args

    cfg = load_train_config(str(ROOT / "configs/train/cpu_tiny.yaml"), ["train.max_grad_norm=0.3", "dpo.max_grad_norm=0"])
    assert SFTConfig(**base_args(cfg.train, tmp_path / "sft", 0)).max_grad_norm == 0.3
    assert DPOConfig(**base_args(cfg.dpo, tmp_path / "dpo", 0)).max_grad_norm == 0.0  # 0 = no clipping
    assert load_train_config(None).train.max_grad_norm == 1.0  # the value it had before it was a key
    with pytest.raises(ConfigError) as e:
        load_train_config(None, ["train.max_grad_norm=-1"])
    assert e.value.problems == ["train.max_grad_norm=-1.0: must be >= 0 (0 = no clipping; typical 1.0)"]


def test_every_problem_of_one_yaml_block_is_named(tmp_path):
    """A block was merged whole: its first problem (train.lr: fast) hid the others, so a misspelt
    train.max_step, or one two blocks down (train.lora.alfa), came up only on the next run."""
    text = (ROOT / "configs/train/cpu_tiny.yaml").read_text()
    for old, new in (("  lr: 5.0e-3 ", "  lr: fast "), ("  max_steps: 400 ", "  max_step: 400 "),
                     ("  warmup_ratio: 0.05", "  warmup_ratio: 0.05\n  lora: {r: many, alfa: 3}")):
        assert old in text
        text = text.replace(old, new, 1)
    path = tmp_path / "configs" / "train" / "bad.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(text)
    with pytest.raises(ConfigError) as exc:
        load_train_config(str(path), ["train.batch_size=-1"])
    probs = exc.value.problems
    assert "train.lr=fast: expected a number, e.g. train.lr=0.5" in probs
    assert "train.max_step: unknown key; did you mean 'train.max_steps'?" in probs
    assert any(p.startswith("train.lora.r=many: expected an integer") for p in probs)
    assert any(p.startswith("train.lora.alfa: unknown key; did you mean 'train.lora.alpha'") for p in probs)
    assert len(probs) == 4, probs  # batch_size=-1 is a value check, run once the types are right


def test_a_scalar_for_a_block_inside_a_yaml_block_names_the_inner_key(tmp_path):
    """train: {lora: 5} was blamed on the outer block: "train={lora: 5}: expected a group of keys (lr, ...)"."""
    path = tmp_path / "configs" / "train" / "bad.yaml"
    path.parent.mkdir(parents=True)
    path.write_text("role: verifier\ntrain:\n  lora: 5\n")
    with pytest.raises(ConfigError) as exc:
        load_train_config(str(path))
    assert exc.value.problems == [("train.lora=5: expected a group of keys (enabled, r, alpha, dropout, "
                                   "target_modules), e.g. train.lora.enabled=true")]


def test_a_mistyped_scheduler_or_dpo_loss_is_refused_before_any_training():
    """``dpo.loss_type=sigmod`` loaded, trained the optimized variant's SFT phase and failed at the first DPO
    step (TRL's "Unknown loss type"), then again on each retry; ``train.scheduler=cosin`` failed on the worker.
    Both are now config errors naming the key, in a sweep too (named by the ablation that set it)."""
    from tracebridge.sweep import grid

    with pytest.raises(ConfigError) as e:
        load_train_config(str(ROOT / "configs/train/cpu_tiny.yaml"),
                          ["dpo.loss_type=sigmod", "train.scheduler=cosin", "dpo.scheduler=linear"])
    assert [p.split(":")[0] for p in e.value.problems] == ["train.scheduler=cosin", "dpo.loss_type=sigmod"]
    assert "sigmoid" in e.value.problems[1] and "cosine" in e.value.problems[0]
    with pytest.raises(ConfigError) as e:
        grid.load_checked(str(ROOT / "configs/sweep/smoke.yaml"),
                          ["bundle=s3://b/x", "ablations.dpo.loss_type=[sigmoid,sigmod]"])
    assert any(p.startswith("2 grid cells (trial verifier-baseline-s0-dpo.loss_type_sigmod and 1 more): "
                            "dpo.loss_type=sigmod: ")
               and p.endswith("(set by ablations.dpo.loss_type)") for p in e.value.problems), e.value.problems


def test_the_scheduler_and_dpo_loss_lists_match_the_installed_transformers_and_trl():
    import inspect
    import re

    from transformers.trainer_utils import SchedulerType
    from trl import DPOTrainer

    from tracebridge.train.config import DPO_LOSS_TYPES, SCHEDULERS

    assert set(SCHEDULERS) == {s.value for s in SchedulerType}
    computed = set(re.findall(r'loss_type == "(\w+)"', inspect.getsource(DPOTrainer)))
    assert computed and set(DPO_LOSS_TYPES) == computed


def test_an_epochs_override_that_max_steps_would_ignore_is_refused():
    """transformers trains ``max_steps`` when it is set and ignores ``num_epochs``: ``train.num_epochs=3`` on
    cpu_tiny (max_steps 400), or a sweep's ``ablations.train.num_epochs=[1,3]``, trained every cell alike
    without a word. Refused now, naming the key and the fix; with ``max_steps=-1`` it trains by epochs."""
    from tracebridge.sweep import grid

    tiny = str(ROOT / "configs/train/cpu_tiny.yaml")
    with pytest.raises(ConfigError) as e:
        load_train_config(tiny, ["train.num_epochs=3", "dpo.num_epochs=2"])
    assert e.value.problems == [
        "train.num_epochs=3: ignored while train.max_steps=400 (max_steps wins); set train.max_steps=-1 to train by epochs",
        "dpo.num_epochs=2: ignored while dpo.max_steps=40 (max_steps wins); set dpo.max_steps=-1 to train by epochs"]
    assert load_train_config(tiny, ["train.num_epochs=3", "train.max_steps=-1"]).train.num_epochs == 3
    with pytest.raises(ConfigError) as e:
        grid.load_checked(str(ROOT / "configs/sweep/smoke.yaml"), ["bundle=s3://b/x", "ablations.train.num_epochs=[1,3]"])
    assert any("train.num_epochs=3: ignored while train.max_steps=6" in p and "(set by ablations.train.num_epochs)" in p
               for p in e.value.problems), e.value.problems
    _, _, specs = grid.load_checked(str(ROOT / "configs/sweep/smoke.yaml"), [
        "bundle=s3://b/x", "ablations.train.num_epochs=[1,3]", "overrides.train.max_steps=-1"])
    assert len(specs) == 4


def test_a_whole_number_other_than_0_or_1_is_no_true_or_false():
    """OmegaConf reads any whole number as true: ``train.packing=2`` loaded as packing on, and a sweep's
    ``ablations.train.packing=[1,2]`` made two trials alike. Refused now, naming the key; 0 and 1 still read
    as false and true."""
    from tracebridge.sweep import grid

    tiny = str(ROOT / "configs/train/cpu_tiny.yaml")
    with pytest.raises(ConfigError) as e:
        load_train_config(tiny, ["train.packing=2", "train.lora.enabled=-1"])
    assert e.value.problems == ["train.packing=2: expected true or false, e.g. train.packing=true",
                                "train.lora.enabled=-1: expected true or false, e.g. train.lora.enabled=true"]
    assert [load_train_config(tiny, [f"train.packing={v}"]).train.packing for v in (0, 1, "true")] == [False, True, True]
    with pytest.raises(ConfigError) as e:
        grid.load_checked(str(ROOT / "configs/sweep/smoke.yaml"), ["bundle=s3://b/x", "ablations.train.packing=[1,2]"])
    assert any(p.endswith("train.packing=2: expected true or false, e.g. train.packing=true (set by "
                          "ablations.train.packing)") for p in e.value.problems), e.value.problems
