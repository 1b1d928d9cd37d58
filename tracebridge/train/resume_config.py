"""Which config a trial folder was trained with, so ``tracebridge train --resume`` refuses to continue it
under another. ``run_trial`` writes ``trial_config.json`` (the resolved config) when a trial starts: a
trial that crashed has no ``trial.json``, and it is the one most often resumed. A resumed trial may run
longer, save and log at other steps and evaluate otherwise; any other key that differs (role, variant,
model shape, data, behaviour, learning rate ...) would continue weights and optimizer state trained
for one config under another, so it is named and the resume refused."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

CONFIG_FILE = "trial_config.json"
# keys a resumed trial may change: how long it runs, when it saves or logs, how it is evaluated
RESUMABLE = ("train.max_steps", "train.num_epochs", "train.save_steps", "train.logging_steps",
             "train.dataset_num_proc", "dpo.max_steps", "dpo.num_epochs", "dpo.save_steps", "dpo.logging_steps",
             "dpo.dataset_num_proc", "threads", "data.prepared_cache", "data.verify_bundle", "data.max_eval_rows",
             "model.seed")  # model.seed: run_trial sets it from seed, which is compared
RESUMABLE_GROUPS = ("eval.", "train.throughput.", "dpo.throughput.")


def write_trial_config(work: Path, config: dict[str, Any]) -> None:
    """Record the resolved ``config`` a trial starts with in its folder (atomically: a trial killed while
    writing it leaves the earlier record or none, never half of one, which would read as no record)."""
    from tracebridge.capture.writer import write_atomic

    write_atomic(work / CONFIG_FILE, json.dumps(config, indent=2, sort_keys=True, default=str).encode())


def _trained_with(work: Path) -> tuple[Path, dict[str, Any]] | None:
    """The config recorded in a trial folder (``trial_config.json``, else a finished trial's ``trial.json``)."""
    for name, pick in ((CONFIG_FILE, lambda d: d), ("trial.json", lambda d: d.get("config"))):
        try:
            found = pick(json.loads((work / name).read_text()))
        except (OSError, ValueError, AttributeError):
            continue
        if isinstance(found, dict):
            return work / name, found
    return None


def resume_config_problem(resume_from: Path, config: dict[str, Any]) -> str | None:
    """Why the trial of ``resume_from`` (its folder or a ``sft``/``dpo`` ``checkpoint-N`` in it) cannot be
    resumed under ``config`` (each differing key, as recorded and as now), or None: the same config but
    for ``RESUMABLE`` keys, or no config recorded (a folder older than ``trial_config.json``)."""
    from tracebridge.sweep.config import flat_keys
    from tracebridge.sweep.identity import LEGACY

    work = resume_from.parent.parent if resume_from.name.startswith("checkpoint-") else resume_from
    found = _trained_with(work)
    if found is None:
        return None
    where, before = found
    was, now = flat_keys(before), flat_keys(config)
    # a key added since the folder was trained (identity.ADDED_KEYS) is the value that behaves as that version did:
    # before, every folder trained before train.max_grad_norm was refused ("None, now 1.0") after an upgrade
    was.update({k: v for k, v in LEGACY.items() if k not in was and k in now})
    diff = [f"{k}: {was.get(k)!r}, now {now.get(k)!r}" for k in sorted(set(was) | set(now))
            if was.get(k) != now.get(k) and k not in RESUMABLE and not k.startswith(RESUMABLE_GROUPS)]
    if not diff:
        return None
    return (f"--resume {resume_from}: trained with another config ({where}): {'; '.join(diff)}; "
            "resume with the values it was trained with, or drop --resume to train afresh")


def nothing_left_problem(resume_from: Path, config: Any) -> str | None:
    """Why ``--resume`` of a finished trial has nothing left to train (None when a phase has steps left):
    resumed at its last step, transformers trains one step past ``max_steps`` and the trial's result
    is rewritten without the finished phases' numbers. The fix says how to train on or re-evaluate.

    Args:
        resume_from: the trial folder or one of its ``checkpoint-N`` folders (``resume_problem`` passed).
        config: the resolved ``TrainConfig`` the trial would resume under.
    """
    from tracebridge.train.common import find_last_checkpoint
    from tracebridge.train.config import Variant
    from tracebridge.train.trial import checkpoint_step, resolve_resume

    where = resolve_resume(resume_from, config.train.max_steps)
    if Variant(config.variant).runs_dpo:
        phase, key, last = "dpo", "dpo", where["dpo"]
        if last is None or not 0 < config.dpo.max_steps <= checkpoint_step(last):
            return None  # DPO has steps left, or starts (again) from sft/final
    else:
        if where["sft_final"] is None:
            return None  # SFT has steps left (or starts afresh)
        phase, key, last = "sft", "train", find_last_checkpoint(where["sft_final"].parent)
    limit = getattr(config, key).max_steps
    work = (last.parent if last else where["sft_final"].parent).parent
    if last:
        done = f"{last} reached {key}.max_steps={limit}"
        fix = f"raise {key}.max_steps above {checkpoint_step(last)} to train on from it"
    else:
        done = f"{phase}/final is trained and no {phase}/checkpoint-N was kept to continue from"
        fix = "drop --resume to train afresh"
    return (f"--resume {resume_from}: nothing left to train ({done}); {fix}, or re-evaluate it with "
            f"tracebridge eval {work / phase / 'final'} CONFIG")
