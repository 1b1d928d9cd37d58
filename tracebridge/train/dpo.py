"""DPO recipe: TRL ``DPOTrainer`` on a role's preference pairs, starting from the SFT model.

The reference is either a frozen copy of the starting model (``dpo.ref: model``) or, with
LoRA, the starting model itself with the adapter disabled (``dpo.ref: adapter``: no second
copy in memory). ``beta`` and ``loss_type`` go to TRL unchanged.
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import Any

from tracebridge.train.common import (
    TrainResult,
    apply_throughput,
    base_args,
    finish,
    peft_config,
    quiet,
    require_rows,
    seed_everything,
    unpatch_forward,
)
from tracebridge.train.config import DPORecipeConfig
from tracebridge.train.context_fit import fit_pref_records
from tracebridge.train.prepared import dpo_trainer_class, with_prepared

log = logging.getLogger(__name__)


def run_dpo(model: Any, tokenizer: Any, records: list[dict[str, Any]], rc: DPORecipeConfig, out_dir: Path,
            seed: int = 0, resume_from: Path | None = None, callbacks: list[Any] | None = None,
            prepared_cache: str | None = None, fit_context: bool = False,
            max_dropped: float = 1.0) -> tuple[Any, TrainResult]:
    """Train ``model`` with DPO on ``records`` (see ``data.to_pref_records``).

    Args:
        model: the SFT model (also the reference, frozen or adapter-disabled).
        tokenizer: its tokenizer.
        records: ``{"prompt", "chosen", "rejected", "tools"}`` rows.
        rc: the recipe config (beta, loss_type, ref, lora, ...).
        out_dir: checkpoints and ``final``.
        seed: data order seed.
        resume_from: a ``checkpoint-N`` folder to continue.
        callbacks: extra ``TrainerCallback`` objects.
        prepared_cache: a folder of prepared datasets shared with other trials
            (``tracebridge.train.prepared``); None = prepare here.
        fit_context: fit long prompts to ``max_length`` first (``tracebridge.train.context_fit``).
        max_dropped: ``data.max_rows_dropped``: the fraction of rows TRL may drop before this raises
            (``common.require_rows``) instead of training on the rest.

    Returns:
        The trained model (LoRA merged) and a ``TrainResult``.
    """
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    seed_everything(seed)
    out_dir = Path(out_dir)
    ref_model = copy.deepcopy(unpatch_forward(model)).eval().requires_grad_(False) if rc.ref == "model" else None
    kwargs = base_args(rc, out_dir, seed) | {
        "beta": rc.beta, "loss_type": [rc.loss_type], "label_smoothing": rc.label_smoothing,
        "precompute_ref_log_probs": False}
    kwargs, model = apply_throughput("dpo", kwargs, model, rc.throughput)
    if fit_context:  # at the max_length TRL truncates at, after the throughput levers
        records, fit = fit_pref_records(records, tokenizer, kwargs["max_length"])
    ds = Dataset.from_list(records)
    if all(r.get("tools") is None for r in records):
        ds = ds.remove_columns("tools")
    if kwargs.get("precompute_ref_log_probs") and ref_model is not None and not rc.lora.enabled:
        ref_model = None  # throughput.precompute_ref: the starting policy scores the reference pass, no copy kept
    trainer_class = dpo_trainer_class() if prepared_cache is not None else DPOTrainer

    def build(ready: Any, store: Any) -> Any:
        extra = {"ready": ready, "on_prepared": store} if prepared_cache is not None else {}
        return trainer_class(model=model, ref_model=ref_model, args=DPOConfig(**kwargs), train_dataset=ds,
                             processing_class=tokenizer, peft_config=peft_config(rc.lora, model), callbacks=callbacks,
                             **extra)

    trainer, prepared = with_prepared(prepared_cache, "dpo", records, tokenizer, {**kwargs, "fit_context": fit_context},
                                      build, lambda t: getattr(t, "prepared_train", None))
    quiet(trainer)
    require_rows(trainer, "dpo", len(records), fit if fit_context else None, max_dropped)
    tds = trainer.train_dataset
    cols = [c for c in ("prompt_ids", "chosen_ids", "rejected_ids") if c in tds.column_names]
    per_row = [sum(len(tds[i][c]) for c in cols) for i in range(min(len(tds), 256))]
    trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    model, res = finish(trainer, "dpo", out_dir, len(records), sum(per_row) / max(len(per_row), 1), resume_from)
    res.prepared, res.rows_fitted = prepared, fit.fitted if fit_context else 0
    return model, res
