"""`submit --resume` after an upgrade that added config keys, without a Ray head: a sweep an older
version stored (its report's resolved config lacks train/dpo.max_grad_norm) is found and continued under
its own id; stored sweeps of the same bundle with another config are named with the keys that differ
instead of a new sweep starting silently; a pinned ``sweep_id`` the config never had is refused."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from tracebridge.config import ConfigError, to_dict
from tracebridge.schema.canonical import sha256_json
from tracebridge.sweep import grid
from tracebridge.sweep.config import NON_IDENTITY, load_sweep_config

ROOT = Path(__file__).resolve().parents[2]
BUNDLE = ROOT / "tests" / "data" / "train_views"
BID = json.loads((BUNDLE / "manifest.json").read_text())["bundle_id"]


@pytest.fixture(autouse=True)
def _in_root(monkeypatch):
    monkeypatch.chdir(ROOT)


def args(tmp: Path, *extra: str) -> list[str]:
    return [f"bundle={BUNDLE}", f"storage={tmp}/storage", f"work_dir={tmp}/work", "variants=[baseline]", *extra]


def plan(tmp: Path, *extra: str):
    from tracebridge.cluster.config import ClusterConfig
    from tracebridge.cluster.submit import plan_sweep

    return plan_sweep(Path("configs/sweep/smoke.yaml"), args(tmp, *extra), ClusterConfig(), ROOT)


def store_as_older_version(tmp: Path, *extra: str,
                           drop=("train.max_grad_norm", "dpo.max_grad_norm", "dpo.label_smoothing",
                                 *(f"{r}.{k}" for r in ("train", "dpo") for k in (
                                     "optim", "adam_beta1", "adam_beta2", "adam_epsilon", "neftune_noise_alpha")))) -> str:
    """What a version before train/dpo.max_grad_norm left on storage for an interrupted sweep: its Tune
    run folder and a report whose manifest holds the resolved config without those keys (nor the ones added
    after them). The id is
    computed as that version did: sha256 over the identity fields and the recipes it resolved."""
    cfg = load_sweep_config("configs/sweep/smoke.yaml", args(tmp, *extra))
    recipes = copy.deepcopy(grid.resolve_recipes(cfg))
    for r in recipes.values():
        for key in drop:
            section, name = key.split(".")
            del r[section][name]
    sweep = {k: v for k, v in to_dict(cfg).items() if k not in NON_IDENTITY}
    sid = f"{cfg.name}-{sha256_json({'sweep': sweep, 'recipes': recipes})[:12]}-{BID[:12]}"
    storage = tmp / "storage"
    (storage / sid).mkdir(parents=True)
    (storage / sid / "tuner.pkl").write_bytes(b"older run")
    (storage / "reports" / sid).mkdir(parents=True)
    (storage / "reports" / sid / "manifest.json").write_text(json.dumps(
        {"sweep_id": sid, "config": {"sweep_id": sid, "bundle_id": BID, "sweep": to_dict(cfg), "recipes": recipes}}))
    return sid


def test_older_versions_sweep_is_resumed_under_its_own_id(tmp_path):
    from tracebridge.cluster.resume import choose_sweep

    fresh = plan(tmp_path)
    old = store_as_older_version(tmp_path)
    assert old in fresh.candidates and fresh.sweep_id != old  # the id changed when the keys were added
    p = plan(tmp_path)  # a plain submit continues the stored run, as it did before the id changed
    assert p.sweep_id == old and p.report_uri.endswith(f"/reports/{old}")
    assert choose_sweep(p, set()) == old  # and so does --resume
    assert f"sweep_id={old}" in p.overrides
    # the job accepts that pin: it runs under the older id, whose Tune run it restores
    cfg = load_sweep_config("configs/sweep/smoke.yaml", p.overrides)
    assert grid.resolve_sweep_id(cfg, grid.resolve_recipes(cfg), BID) == old


def test_the_id_of_a_config_at_the_old_behaviour_is_the_oldest_versions():
    """Every key added since sweeps existed, at the value that behaves as before, leaves the id alone."""
    from tracebridge.sweep.identity import LEGACY

    cfg = load_sweep_config("configs/sweep/smoke.yaml", [f"bundle={BUNDLE}", "overrides.data.max_rows_dropped=1.0"])
    recipes = grid.resolve_recipes(cfg)
    bare = copy.deepcopy(recipes)
    for r in bare.values():
        for key in LEGACY:
            section, name = key.split(".")
            del r[section][name]
    sweep = grid.identity_fields(cfg)
    assert grid.sweep_id(cfg, recipes, BID) == f"{cfg.name}-{sha256_json({'sweep': sweep, 'recipes': bare})[:12]}-{BID[:12]}"
    clipped = load_sweep_config("configs/sweep/smoke.yaml", [f"bundle={BUNDLE}", "overrides.data.max_rows_dropped=1.0",
                                                              "overrides.train.max_grad_norm=0.5"])
    assert grid.sweep_id(clipped, grid.resolve_recipes(clipped), BID) != grid.sweep_id(cfg, recipes, BID)


def test_a_sweep_the_cluster_knows_under_an_older_id_is_resumed(tmp_path):
    from tracebridge.cluster.resume import choose_sweep

    p = plan(tmp_path)
    assert choose_sweep(p, {p.candidates[-1], "other-sweep"}) == p.candidates[-1]
    assert choose_sweep(p, set()) == p.sweep_id  # nothing stored of this bundle: a first attempt


def test_resume_names_the_keys_that_differ_from_the_stored_sweeps(tmp_path):
    from tracebridge.cluster.resume import choose_sweep

    old = store_as_older_version(tmp_path, "overrides.train.lr=0.01")
    p = plan(tmp_path, "overrides.train.max_grad_norm=0.5")
    with pytest.raises(ConfigError) as exc:
        choose_sweep(p, {f"x-{'0' * 12}-{BID[:12]}"})
    text = str(exc.value)
    assert f"stored sweep {old} of the same bundle differs in" in text
    assert "recipes.baseline.train.lr: stored 0.01, now 0.005" in text
    assert "recipes.baseline.train.max_grad_norm: stored absent (an older version; behaves as 1.0), now 0.5" in text
    assert "dpo.max_grad_norm" not in text  # absent there, at its old value here: no difference
    assert f"stored sweep x-{'0' * 12}-{BID[:12]} of the same bundle: its config is not recorded" in text
    assert f"--resume: no sweep {p.sweep_id} (nor an earlier version's id of this config)" in text
    assert f"to start sweep {p.sweep_id}, submit without --resume" in text


def test_a_pinned_sweep_id_this_config_never_had_is_refused(tmp_path):
    cfg = load_sweep_config("configs/sweep/smoke.yaml", args(tmp_path, f"sweep_id=smoke-{'1' * 12}-{BID[:12]}"))
    with pytest.raises(ConfigError, match=r"sweep_id=smoke-1{12}-\w+: not an id this config and bundle have had"):
        grid.resolve_sweep_id(cfg, grid.resolve_recipes(cfg), BID)


def test_a_sweep_that_pushed_no_report_is_compared_by_the_config_its_job_recorded(tmp_path):
    from tracebridge.cluster.resume import choose_sweep, stored_sweeps
    from tracebridge.sweep.publish import record_sweep

    cfg = load_sweep_config("configs/sweep/smoke.yaml", args(tmp_path, "seeds=[0,1]"))
    recipes = grid.resolve_recipes(cfg)
    sid = grid.sweep_id(cfg, recipes, BID)
    record_sweep(cfg, sid, BID, recipes)  # what jobs/sweep.py writes before training
    (tmp_path / "storage" / sid).mkdir()  # its Tune run, interrupted before any report
    assert stored_sweeps(cfg, BID) == {sid: {"sweep": grid.identity_fields(cfg), "recipes": recipes}}
    p = plan(tmp_path, "seeds=[0,2]")
    with pytest.raises(ConfigError, match=rf"stored sweep {sid} of the same bundle differs in sweep.seeds: "
                                          r"stored \[0, 1\], now \[0, 2\]"):
        choose_sweep(p, set())
    same = plan(tmp_path, "seeds=[0,1]")
    assert choose_sweep(same, set()) == sid == same.sweep_id


@pytest.mark.cluster
def test_submit_resume_refuses_to_start_afresh_when_only_other_sweeps_of_the_bundle_are_stored(ray_head, tmp_path):
    """On the real head: the refusal comes after the cluster's jobs were asked too, exit 2, nothing submitted."""
    from typer.testing import CliRunner

    from tracebridge.cli import app

    old = store_as_older_version(tmp_path, "overrides.train.lr=0.01")
    res = CliRunner().invoke(app, ["submit", "configs/sweep/smoke.yaml", *args(tmp_path), "--cluster",
                                   ray_head["yaml"], "--keep", "--resume", "--json"])
    assert res.exit_code == 2, res.output
    err = json.loads(res.stdout)["error"]
    assert f"stored sweep {old} of the same bundle differs in recipes.baseline.train.lr: stored 0.01, now 0.005" in err
    listed = CliRunner().invoke(app, ["list", "--cluster", ray_head["yaml"], "--json"])
    assert listed.exit_code == 0, listed.output
    assert not set(plan(tmp_path).candidates) & {j.get("sweep_id") for j in json.loads(listed.stdout)}


# Every TrainConfig key as of the last change to sweep identity, less ``identity.ADDED_KEYS``. A key
# added to TrainConfig since is missing here: the test below fails so that whoever adds it decides
# whether older sweeps behaved as one value of it (then ``ADDED_KEYS`` gets it, and sweep ids stay)
# or not (then it joins this list, and every sweep id changes once).
_KEYS_BEFORE_ADDED = """
data.dedup data.eval_split data.feedback_weight data.max_eval_rows data.max_train_rows data.recovery_weight
data.verify_bundle dpo.batch_size dpo.beta dpo.bf16 dpo.grad_accum dpo.gradient_checkpointing
dpo.logging_steps dpo.lora.alpha dpo.lora.dropout dpo.lora.enabled dpo.lora.r dpo.lora.target_modules
dpo.loss_type dpo.lr dpo.max_length dpo.max_steps dpo.num_epochs dpo.ref dpo.save_steps dpo.scheduler
dpo.throughput dpo.warmup_ratio dpo.weight_decay eval.batch_size eval.ci eval.closed_loop.enabled
eval.closed_loop.failures eval.closed_loop.families eval.closed_loop.max_new_tokens eval.closed_loop.max_steps
eval.closed_loop.seeds eval.closed_loop.skill eval.fit_context eval.max_batch_tokens eval.max_length
eval.max_new_tokens eval.n_boot eval.verifier_method model.arch model.attn_implementation model.chat_template
model.dtype model.head_dim model.hidden_size model.init model.intermediate_size model.max_position_embeddings
model.name model.num_attention_heads model.num_hidden_layers model.num_key_value_heads model.path
model.rope_theta model.seed model.tie_word_embeddings model.tokenizer_vocab_size model.vocab_size role seed
threads train.assistant_only_loss train.batch_size train.bf16 train.grad_accum train.gradient_checkpointing
train.logging_steps train.lora.alpha train.lora.dropout train.lora.enabled train.lora.r
train.lora.target_modules train.lr train.max_length train.max_steps train.num_epochs train.packing
train.save_steps train.scheduler train.throughput train.warmup_ratio train.weight_decay variant
"""
KEYS_BEFORE_ADDED = frozenset(_KEYS_BEFORE_ADDED.split())


def _config_keys(cls: type, prefix: str = "") -> set[str]:
    """The dotted keys of a config dataclass (a nested dataclass field is walked, anything else a key)."""
    import dataclasses

    out = set()
    for f in dataclasses.fields(cls):
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        out |= _config_keys(type(default), f"{prefix}{f.name}.") if dataclasses.is_dataclass(default) \
            else {prefix + f.name}
    return out


def test_every_train_config_key_is_known_to_the_sweep_identity():
    from tracebridge.sweep.identity import LEGACY
    from tracebridge.train.config import TrainConfig

    keys = _config_keys(TrainConfig)
    new = sorted(keys - KEYS_BEFORE_ADDED - set(LEGACY))
    assert not new, (f"TrainConfig keys {new} change every sweep id: add each to tracebridge/sweep/identity."
                     "ADDED_KEYS with the value that behaves as before it (ids stay), or to KEYS_BEFORE_ADDED here")
    assert set(LEGACY) <= keys, f"ADDED_KEYS names keys TrainConfig no longer has: {sorted(set(LEGACY) - keys)}"
