"""The values of transformers' and TRL's choices a recipe may name (``train.scheduler``, ``train.optim`` and its
Adam settings, ``dpo.loss_type``, ``dpo.label_smoothing``), listed here so a bad one is refused on the driver, before any worker starts (importing
transformers or TRL costs seconds): transformers refused a bad scheduler only on the worker, and TRL an unknown loss
type at the first DPO step, after the SFT phase, then again on every retry. ``tests/train/test_config.py`` keeps the
lists equal to the installed versions'; ``tests/train/test_trl_choices.py`` builds every scheduler accepted here."""

from __future__ import annotations

from typing import Any

# transformers' SchedulerType
SCHEDULERS = ("linear", "cosine", "cosine_with_restarts", "polynomial", "constant", "constant_with_warmup", "inverse_sqrt",
              "reduce_lr_on_plateau", "cosine_with_min_lr", "cosine_warmup_with_min_lr", "warmup_stable_decay", "greedy")
# ... of which these cannot run in a trial: each failed at the start of training, on the worker, after the data was prepared
SCHEDULERS_REFUSED = {
    "reduce_lr_on_plateau": "steps on evaluation metrics, and trials evaluate after training only (transformers: "
                            "'requires an eval strategy')",
    "greedy": "steps on evaluation metrics, and trials evaluate after training only (transformers: 'requires an eval "
              "strategy')",
    "cosine_with_min_lr": "needs min_lr or min_lr_rate in lr_scheduler_kwargs, which recipes do not pass",
    "cosine_warmup_with_min_lr": "needs min_lr or min_lr_rate in lr_scheduler_kwargs, which recipes do not pass",
    "warmup_stable_decay": "needs num_decay_steps in lr_scheduler_kwargs, which recipes do not pass",
}
# transformers' OptimizerNames (TrainingArguments.optim)
OPTIMIZERS = ("adamw_torch", "adamw_torch_fused", "adamw_torch_xla", "adamw_torch_npu_fused", "adafactor",
              "adamw_anyprecision", "adamw_torch_4bit", "adamw_torch_8bit", "ademamix", "sgd", "adagrad", "adamw_bnb_8bit",
              "adamw_8bit", "ademamix_8bit", "lion_8bit", "lion_32bit", "paged_adamw_32bit", "paged_adamw_8bit",
              "paged_ademamix_32bit", "paged_ademamix_8bit", "paged_lion_32bit", "paged_lion_8bit", "rmsprop", "rmsprop_bnb",
              "rmsprop_bnb_8bit", "rmsprop_bnb_32bit", "galore_adamw", "galore_adamw_8bit", "galore_adafactor",
              "galore_adamw_layerwise", "galore_adamw_8bit_layerwise", "galore_adafactor_layerwise", "lomo", "adalomo",
              "grokadamw", "schedule_free_radam", "schedule_free_adamw", "schedule_free_sgd", "apollo_adamw",
              "apollo_adamw_layerwise", "stable_adamw")
# ... of which these cannot run in a trial: transformers raised at the start of training, on the worker
OPTIMIZERS_REFUSED = {o: "needs optim_target_modules, which recipes do not pass" for o in OPTIMIZERS
                      if o.startswith(("galore_", "apollo_"))}
# the loss types TRL's DPOTrainer computes
DPO_LOSS_TYPES = ("sigmoid", "hinge", "ipo", "exo_pair", "nca_pair", "robust", "bco_pair", "sppo_hard", "aot",
                  "aot_unpaired", "apo_zero", "apo_down", "discopop", "sft", "sigmoid_norm")
LABEL_SMOOTHING_LOSSES = ("exo_pair", "robust", "aot", "aot_unpaired")  # the DPO losses TRL smooths labels in


def scheduler_problems(prefix: str, name: str) -> list[str]:
    """``<prefix>.scheduler``: one transformers has, and one a trial can run (``SCHEDULERS_REFUSED``)."""
    usable = ", ".join(s for s in SCHEDULERS if s not in SCHEDULERS_REFUSED)
    if name not in SCHEDULERS:
        return [f"{prefix}.scheduler={name}: not a transformers scheduler; use one of {usable}"]
    if name in SCHEDULERS_REFUSED:
        return [f"{prefix}.scheduler={name}: {SCHEDULERS_REFUSED[name]}; use one of {usable}"]
    return []


def optimizer_problems(prefix: str, rc: Any) -> list[str]:
    """``<prefix>.optim`` (one transformers has and a trial can run, ``OPTIMIZERS_REFUSED``), ``adam_beta1``/``adam_beta2``
    in [0, 1), ``adam_epsilon`` > 0 and ``neftune_noise_alpha`` None or > 0 of a recipe config ``rc``: transformers
    refused a bad optimizer name, and torch a bad beta or epsilon, only on the worker, after the data was prepared."""
    usable = ", ".join(o for o in OPTIMIZERS if o not in OPTIMIZERS_REFUSED)
    p = []
    if rc.optim not in OPTIMIZERS:
        p.append(f"{prefix}.optim={rc.optim}: not a transformers optimizer; use one of {usable}")
    elif rc.optim in OPTIMIZERS_REFUSED:
        p.append(f"{prefix}.optim={rc.optim}: {OPTIMIZERS_REFUSED[rc.optim]}; use one of {usable}")
    p += [f"{prefix}.{k}={getattr(rc, k)}: must be in [0, 1) (typical {d})"
          for k, d in (("adam_beta1", 0.9), ("adam_beta2", 0.999)) if not 0 <= getattr(rc, k) < 1]
    if not rc.adam_epsilon > 0:
        p.append(f"{prefix}.adam_epsilon={rc.adam_epsilon}: must be > 0 (typical 1e-8)")
    if rc.neftune_noise_alpha is not None and not rc.neftune_noise_alpha > 0:
        p.append(f"{prefix}.neftune_noise_alpha={rc.neftune_noise_alpha}: must be > 0 (typical 5), or null for no noise")
    return p


def smoothing_problems(loss: str, ls: float) -> list[str]:
    """``dpo.label_smoothing`` against ``dpo.loss_type`` (``LABEL_SMOOTHING_LOSSES``): TRL refuses exo_pair without it
    at the first DPO step, after SFT; robust without it is the sigmoid loss, and the other losses ignore it."""
    if not 0 <= ls < 0.5:
        return [f"dpo.label_smoothing={ls}: must be in [0, 0.5) (robust DPO: typical 0.1; exo_pair: 1e-3)"]
    if loss in ("exo_pair", "robust") and ls == 0:
        return [f"dpo.loss_type={loss}: needs dpo.label_smoothing > 0 (" + ("EXO's epsilon, typical 1e-3)" if loss ==
                "exo_pair" else "the chance a label is flipped, typical 0.1; at 0 robust is the sigmoid loss)")]
    if ls and loss not in LABEL_SMOOTHING_LOSSES:
        return [(f"dpo.label_smoothing={ls}: not read by dpo.loss_type={loss} (only by "
                 f"{', '.join(LABEL_SMOOTHING_LOSSES)}); set it to 0 or use one of those losses")]
    return []
