"""Schedulers a recipe may name: transformers has twelve, and five of them cannot run in a trial. Before, the config
accepted them all, and ``train.scheduler=cosine_with_min_lr`` (or ``warmup_stable_decay``, ``greedy``,
``reduce_lr_on_plateau``, ``cosine_warmup_with_min_lr``) failed each trial at the start of training, on the worker,
after its data was prepared (a sweep's ``ablations.train.scheduler`` lost every such cell). Each accepted one builds
here with the real transformers; each refused one is refused before training, with why, and still fails in
transformers (so the list goes stale loudly)."""

from __future__ import annotations

import pytest

from tracebridge.config import ConfigError
from tracebridge.train.config import load_train_config
from tracebridge.train.trl_choices import SCHEDULERS, SCHEDULERS_REFUSED


def build(name: str, tmp_path) -> None:
    """What a trial's trainer does with the scheduler: its SFTConfig, then the scheduler over 10 steps."""
    import torch
    from transformers.optimization import get_scheduler
    from trl import SFTConfig

    from tracebridge.train.common import base_args

    cfg = load_train_config(None, [f"train.scheduler={name}"]) if name not in SCHEDULERS_REFUSED else None
    args = SFTConfig(**base_args(cfg.train, tmp_path, 0)) if cfg else SFTConfig(
        output_dir=str(tmp_path), lr_scheduler_type=name, use_cpu=True, report_to="none")
    opt = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=1e-3)
    get_scheduler(args.lr_scheduler_type, opt, num_warmup_steps=1, num_training_steps=10,
                  scheduler_specific_kwargs=args.lr_scheduler_kwargs)


@pytest.mark.parametrize("name", [s for s in SCHEDULERS if s not in SCHEDULERS_REFUSED])
def test_every_accepted_scheduler_builds_as_a_trial_builds_it(name, tmp_path):
    build(name, tmp_path)


@pytest.mark.parametrize("name", sorted(SCHEDULERS_REFUSED))
def test_a_scheduler_no_trial_can_run_is_refused_before_training_with_why(name, tmp_path):
    with pytest.raises(ConfigError) as e:
        load_train_config(None, [f"train.scheduler={name}", f"dpo.scheduler={name}"])
    assert [p.split(": ")[0] for p in e.value.problems] == [f"train.scheduler={name}", f"dpo.scheduler={name}"]
    assert SCHEDULERS_REFUSED[name] in e.value.problems[0] and "use one of linear, cosine," in e.value.problems[0]
    with pytest.raises((ValueError, TypeError)):  # what the worker hit at the start of training
        build(name, tmp_path)
