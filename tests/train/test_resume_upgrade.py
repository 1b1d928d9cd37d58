"""``tracebridge train --resume`` of a trial folder trained before an upgrade added config keys: its recorded
config lacks them. Before, every such folder was refused ("train.max_grad_norm: None, now 1.0") although the key at
its old-behaviour value (``tracebridge.sweep.identity.ADDED_KEYS``) trains as that version did; it now resumes, and a
key whose value now differs from how the old version behaved is still named, with that old value."""

from __future__ import annotations

import json
from pathlib import Path

from tracebridge.config import to_dict
from tracebridge.train.config import load_train_config
from tracebridge.train.resume_config import resume_config_problem

ROOT = Path(__file__).resolve().parents[2]
ADDED = (("train", "max_grad_norm"), ("dpo", "max_grad_norm"), ("dpo", "label_smoothing"), ("data", "max_rows_dropped"),
         *((r, k) for r in ("train", "dpo") for k in ("optim", "adam_beta1", "adam_beta2", "adam_epsilon",
                                                       "neftune_noise_alpha")))


def older_folder(tmp_path: Path, config: dict) -> Path:
    """A trial folder as a version before those keys recorded it."""
    old = json.loads(json.dumps(config))
    for section, key in ADDED:
        del old[section][key]
    work = tmp_path / "verifier-baseline-s0"
    work.mkdir()
    (work / "trial_config.json").write_text(json.dumps(old))
    return work


def test_a_folder_trained_before_keys_were_added_resumes_at_their_old_behaviour(tmp_path):
    config = to_dict(load_train_config(str(ROOT / "configs/train/cpu_tiny.yaml"), ["data.max_rows_dropped=1"]))
    work = older_folder(tmp_path, config)
    assert resume_config_problem(work / "sft" / "checkpoint-2", config) is None
    clipped = {**config, "train": {**config["train"], "max_grad_norm": 0.5}}
    assert "train.max_grad_norm: 1.0, now 0.5" in resume_config_problem(work, clipped)
    other = {**config, "dpo": {**config["dpo"], "optim": "adafactor"}}  # another optimizer's state is no resume
    assert "dpo.optim: 'adamw_torch_fused', now 'adafactor'" in resume_config_problem(work, other)


def test_a_key_whose_default_now_behaves_otherwise_is_still_named(tmp_path):
    config = to_dict(load_train_config(str(ROOT / "configs/train/cpu_tiny.yaml")))  # max_rows_dropped 0.5
    why = resume_config_problem(older_folder(tmp_path, config), config)
    assert why is not None and "data.max_rows_dropped: 1.0, now 0.5" in why and "max_grad_norm" not in why
