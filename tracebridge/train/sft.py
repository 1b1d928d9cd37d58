"""SFT recipe: TRL ``SFTTrainer`` on a role's conversational rows, top to bottom.

Assistant-only loss (the chat template's generation markers), optional packing, optional LoRA
(merged into the weights at the end), bf16 on GPU, gradient checkpointing off unless asked,
fixed seeds, checkpoints every ``save_steps`` that ``resume_from`` continues from.
"""

from __future__ import annotations

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
)
from tracebridge.train.config import SFTRecipeConfig
from tracebridge.train.context_fit import fit_sft_records
from tracebridge.train.prepared import with_prepared

log = logging.getLogger(__name__)


def run_sft(model: Any, tokenizer: Any, records: list[dict[str, Any]], rc: SFTRecipeConfig, out_dir: Path,
            seed: int = 0, resume_from: Path | None = None, callbacks: list[Any] | None = None,
            prepared_cache: str | None = None, fit_context: bool = False,
            max_dropped: float = 1.0) -> tuple[Any, TrainResult]:
    """Fine-tune ``model`` on conversational ``records`` (see ``data.to_sft_records``).

    Args:
        model: a causal LM (from ``tracebridge.train.models``).
        tokenizer: its tokenizer, with a chat template that has generation markers.
        records: ``{"messages": [...], "tools": json-string | None}`` rows, or ``{"prompt", "completion",
            "tools"}`` ones (loss on the completion only; see ``data.to_sft_records``).
        rc: the recipe config.
        out_dir: checkpoints go to ``out_dir/checkpoint-N``, the final model to ``out_dir/final``.
        seed: data order and dropout seed.
        resume_from: a ``checkpoint-N`` folder of an earlier run of the same config.
        callbacks: extra ``TrainerCallback`` objects (e.g. to report progress).
        prepared_cache: a folder of prepared datasets shared with other trials
            (``tracebridge.train.prepared``); None = prepare here.
        fit_context: fit long prompts to ``max_length`` first (``tracebridge.train.context_fit``).
        max_dropped: ``data.max_rows_dropped``: the fraction of rows TRL may drop before this raises
            (``common.require_rows``) instead of training on the rest.

    Returns:
        The trained model (LoRA merged) and a ``TrainResult``.
    """
    from datasets import Dataset
    from trl import SFTConfig

    seed_everything(seed)
    out_dir = Path(out_dir)
    kwargs = base_args(rc, out_dir, seed) | {
        "packing": rc.packing, "assistant_only_loss": rc.assistant_only_loss,
        "padding_free": False}
    kwargs, model = apply_throughput("sft", kwargs, model, rc.throughput)
    # throughput.padding_free packs into micro_batch_tokens rows (TRL's max_length): each row is still cut
    # at the recipe's max_length first, and dropped when that leaves it no trainable token, as without it
    cut = rc.max_length if kwargs["max_length"] != rc.max_length else None
    if fit_context:  # at the max_length each row is cut at
        records, fit = fit_sft_records(records, tokenizer, rc.max_length, kwargs["assistant_only_loss"])
    ds = Dataset.from_list(records)
    if all(r.get("tools") is None for r in records):
        ds = ds.remove_columns("tools")

    def build(ready: Any, _store: Any) -> Any:  # stored once built: nothing model-dependent comes after
        args, dataset = kwargs, ds
        if ready is not None:  # the stored labels already mask what the loss flags masked (TRL's collator
            # uses labels as they are); left on, those flags would re-check rows that are no conversations
            args, dataset = {**kwargs, "assistant_only_loss": False, "completion_only_loss": False,
                             "dataset_kwargs": {**(kwargs.get("dataset_kwargs") or {}),
                                                "skip_prepare_dataset": True}}, ready
        return row_cut_trainer_class()(model=model, args=SFTConfig(**args), train_dataset=dataset,
                                       processing_class=tokenizer, peft_config=peft_config(rc.lora, model),
                                       callbacks=callbacks, row_max_length=cut)

    key_args = {**kwargs, "fit_context": fit_context} | ({"row_max_length": cut} if cut else {})
    trainer, prepared = with_prepared(prepared_cache, "sft", records, tokenizer, key_args, build,
                                      lambda t: t.train_dataset)
    quiet(trainer)
    require_rows(trainer, "sft", len(records), fit if fit_context else None, max_dropped, rc.max_length)
    lengths = [len(x) for x in trainer.train_dataset["input_ids"]]
    trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    model, res = finish(trainer, "sft", out_dir, len(records), sum(lengths) / max(len(lengths), 1), resume_from)
    res.prepared, res.rows_fitted = prepared, fit.fitted if fit_context else 0
    return model, res


def row_cut_trainer_class() -> type:
    """``trl.SFTTrainer`` that, given ``row_max_length`` below the packed rows' ``max_length``, prepares the
    train set as TRL does without packing (each row cut at ``row_max_length``, rows left with no trainable
    token dropped), then packs it as TRL does (``pack_dataset``, ``max_length`` tokens a row). TRL's own
    packing cuts a row only at the packed length and keeps rows that have no trainable token."""
    from trl import SFTTrainer, pack_dataset

    class RowCutSFTTrainer(SFTTrainer):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, row_max_length: int | None = None, **kwargs: Any) -> None:
            self._row_max_length = row_max_length
            super().__init__(*args, **kwargs)

        def _prepare_dataset(self, dataset: Any, processing_class: Any, args: Any, packing: bool,
                             formatting_func: Any, dataset_name: str) -> Any:
            cut, packed = self._row_max_length, args.max_length
            if not packing or not cut or cut >= packed:
                return super()._prepare_dataset(dataset, processing_class, args, packing, formatting_func, dataset_name)
            args.max_length = cut  # the rows' preparation: truncation and the fully masked filter at ``cut``
            try:
                out = super()._prepare_dataset(dataset, processing_class, args, False, formatting_func, dataset_name)
            finally:
                args.max_length = packed
            out = pack_dataset(out.select_columns(["input_ids", "labels"]), packed, args.packing_strategy,
                               {"num_proc": args.dataset_num_proc})
            return out.shuffle(seed=args.seed) if args.shuffle_dataset else out

    return RowCutSFTTrainer
