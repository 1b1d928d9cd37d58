"""What the SFT and DPO recipes share: TRL/transformers argument building, the throughput
hook, LoRA configs, seeding, and the ``TrainResult`` a recipe returns (loss curve, speed,
memory, checkpoint).

Throughput hook (the contract for ``tracebridge.train.throughput``): when a recipe's
``throughput`` block is not empty, the recipe calls
``tracebridge.train.throughput.apply_throughput(recipe, args, model, options) -> (args, model)``
with ``recipe`` = ``"sft"`` or ``"dpo"``, ``args`` = the keyword arguments about to build
``SFTConfig``/``DPOConfig`` (a dict it may change) and ``options`` = the block as a dict.
"""

from __future__ import annotations

import logging
import resource
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tracebridge.train.config import DEFAULT_LORA_TARGETS, LoraConfig, RecipeConfig

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    """What one recipe run produced."""

    recipe: str
    checkpoint_dir: str
    loss_curve: list[dict[str, float]] = field(default_factory=list)
    global_step: int = 0
    train_runtime_s: float = 0.0
    rows: int = 0
    tokens: int = 0
    tokens_per_s: float = 0.0
    peak_memory_bytes: int = 0
    resumed_from: str | None = None
    rows_dropped: int = 0
    rows_fitted: int = 0  # data.fit_context: rows whose oldest context was dropped to fit max_length
    prepared: str = ""  # data.prepared_cache: "loaded" (another trial prepared it), "stored", or "" (off)

    @property
    def first_loss(self) -> float:
        """The first logged loss (nan when none was logged)."""
        return self.loss_curve[0]["loss"] if self.loss_curve else float("nan")

    @property
    def last_loss(self) -> float:
        """The last logged loss (nan when none was logged)."""
        return self.loss_curve[-1]["loss"] if self.loss_curve else float("nan")

    def to_dict(self) -> dict[str, Any]:
        """The result as a plain dict."""
        return asdict(self)


def seed_everything(seed: int, threads: int | None = None) -> None:
    """Seed python, numpy and torch; set torch's CPU threads (1 is fastest for tiny models)."""
    from transformers import set_seed

    set_seed(seed)
    if threads:
        import torch

        torch.set_num_threads(threads)


def use_bf16(rc: RecipeConfig) -> bool:
    """Whether to train in bf16: ``rc.bf16``, or when that is None, whether CUDA is available."""
    import torch

    return torch.cuda.is_available() if rc.bf16 is None else rc.bf16


def base_args(rc: RecipeConfig, out_dir: Path, seed: int) -> dict[str, Any]:
    """Keyword arguments common to ``SFTConfig`` and ``DPOConfig``."""
    import torch
    from transformers import TrainingArguments

    kw = {
        "output_dir": str(out_dir), "seed": seed, "data_seed": seed, "learning_rate": rc.lr,
        "max_steps": rc.max_steps, "num_train_epochs": rc.num_epochs,
        "per_device_train_batch_size": rc.batch_size, "gradient_accumulation_steps": rc.grad_accum,
        "warmup_steps": rc.warmup_ratio, "weight_decay": rc.weight_decay, "lr_scheduler_type": rc.scheduler,
        "max_grad_norm": rc.max_grad_norm, "optim": rc.optim, "adam_beta1": rc.adam_beta1, "adam_beta2": rc.adam_beta2,
        "adam_epsilon": rc.adam_epsilon, "neftune_noise_alpha": rc.neftune_noise_alpha,
        "bf16": use_bf16(rc), "gradient_checkpointing": rc.gradient_checkpointing,
        "activation_checkpointing": rc.gradient_checkpointing,
        "logging_steps": rc.logging_steps, "logging_first_step": True, "report_to": "none", "disable_tqdm": True,
        "save_strategy": "steps" if rc.save_steps else "no", "save_steps": rc.save_steps or 500,
        "save_total_limit": 2, "dataloader_num_workers": 0, "use_cpu": not torch.cuda.is_available(),
        "max_length": rc.max_length, "dataset_num_proc": rc.dataset_num_proc or None,
    }
    if "activation_checkpointing" not in TrainingArguments.__dataclass_fields__:  # transformers < 5.2x
        kw.pop("activation_checkpointing")
    return kw


def apply_throughput(recipe: str, args: dict[str, Any], model: Any, options: dict[str, Any]) -> tuple[dict, Any]:
    """Hand the recipe's arguments and model to the throughput levers when any are configured."""
    if not options:
        return args, model
    try:
        from tracebridge.train import throughput  # type: ignore[attr-defined]
    except ImportError as exc:
        raise RuntimeError(f"{recipe}.throughput={options}: tracebridge.train.throughput is not available; "
                           "leave the block empty for TRL defaults") from exc
    return throughput.apply_throughput(recipe, args, model, dict(options))


def peft_config(lora: LoraConfig, model: Any = None) -> Any:
    """A peft ``LoraConfig`` for causal LM, or None when LoRA is off.

    The default target modules are the llama/qwen2 attention projections; on a ``model`` that has
    none of them (gpt2's ``c_attn``, phi's fused ``qkv_proj``...) the default becomes peft's
    ``all-linear`` (every linear layer but the output head), logged. Modules a user named are
    passed as they are: peft says which it did not find.
    """
    if not lora.enabled:
        return None
    from peft import LoraConfig as PeftLora

    targets: Any = list(lora.target_modules)
    if model is not None and targets == DEFAULT_LORA_TARGETS:
        leaves = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
        if not leaves & set(targets):
            log.info("LoRA: %s has none of %s; adapters on all linear layers", type(model).__name__, targets)
            targets = "all-linear"
    return PeftLora(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
                    target_modules=targets, task_type="CAUSAL_LM")


def loss_curve(log_history: list[dict[str, Any]]) -> list[dict[str, float]]:
    """``[{step, loss}]`` from a trainer's log history."""
    return [{"step": int(h["step"]), "loss": float(h["loss"])} for h in log_history if "loss" in h]


def peak_memory_bytes() -> int:
    """Peak CUDA memory allocated when on GPU, else the process's peak RSS."""
    import torch

    if torch.cuda.is_available():
        return int(torch.cuda.max_memory_allocated())
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(rss if sys.platform == "darwin" else rss * 1024)


def unpatch_forward(model: Any) -> Any:
    """Drop the instance-level ``forward`` that TRL/accelerate install while training.

    TRL's fused forward closes over the *original* object's bound forward, so a ``deepcopy`` of a
    patched model (e.g. a frozen DPO reference) would silently run the live model's weights.
    """
    for m in (model, getattr(model, "base_model", None)):
        if m is not None:
            m.__dict__.pop("forward", None)
    return model


def find_last_checkpoint(out_dir: Path, below: int | None = None) -> Path | None:
    """The newest complete ``checkpoint-N`` folder in ``out_dir`` (with ``below``: of a step under it), if any:
    one holding ``trainer_state.json``, which transformers writes last. A trial killed while saving leaves a newer
    folder without it (the model written, not the optimizer or the state): resumed from, transformers failed on
    it (FileNotFoundError) and the trial with it, so it is passed over, with a warning, for the checkpoint before."""
    cps = sorted((p for p in Path(out_dir).glob("checkpoint-*") if p.name.split("-")[-1].isdigit()
                  and (below is None or int(p.name.split("-")[-1]) < below)), key=lambda p: int(p.name.split("-")[-1]))
    done = [p for p in cps if (p / "trainer_state.json").is_file()]
    for p in cps[cps.index(done[-1]) + 1 if done else 0:]:
        log.warning("%s: left incomplete (no trainer_state.json: killed while saving?); not resumed from", p)
    return done[-1] if done else None


def _rows_kept(dataset: Any) -> int:
    """Rows of the prepared set that hold a trainable token (a label other than -100).

    Packed rows hold several (TRL's ``seq_lengths`` lists them), and with packing TRL neither truncates
    each row to ``max_length`` nor drops the rows that truncation leaves fully masked: its bfd packing cuts
    a row past ``max_length`` and keeps it. So each packed row's labels are split by its ``seq_lengths``
    and only the parts with a trainable label count; unpacked, TRL has already dropped those rows.
    """
    import numpy as np
    import pyarrow.compute as pc

    columns = dataset.column_names or []
    if "seq_lengths" not in columns:
        return len(dataset)
    if "labels" not in columns:  # no labels to read (not TRL's preparation): every listed sequence counts
        return sum(len(x) for x in dataset["seq_lengths"])
    kept = 0
    for batch in dataset.with_format("arrow").iter(batch_size=1024):
        lengths = pc.list_flatten(batch["seq_lengths"]).to_numpy(zero_copy_only=False)
        trainable = pc.not_equal(pc.list_flatten(batch["labels"]), -100).to_numpy(zero_copy_only=False)
        lengths = lengths[lengths > 0]
        if not lengths.size:
            continue
        if lengths.sum() != trainable.size:  # not laid out as packed sequences: count them all
            kept += int(lengths.size)
            continue
        starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
        kept += int(np.count_nonzero(np.add.reduceat(trainable.astype(np.int64), starts)))
    return kept


class TrialInputError(ValueError):
    """The trial's config and rows cannot train: run again, they fail the same way, so a sweep
    reports it at once instead of retrying (``tracebridge.sweep.trainable.tune_trial``)."""


def require_rows(trainer: Any, recipe: str, rows: int, fit: Any = None, max_dropped: float = 1.0,
                 max_length: int | None = None) -> None:
    """Raise before training when TRL's preparation dropped every row, or more than ``max_dropped`` of
    them (each longer than ``max_length`` leaves no trainable token): with none left training stops in
    the sampler with ``num_samples=0``, naming no cause; with a few left (OpenClaw worker rows carry
    ~1.1k tokens of tool schemas, over cpu_tiny's 1024) the trial trained and reported metrics on a
    handful of rows, and only a warning said so.

    Args:
        fit: the ``context_fit.FitReport`` when ``data.fit_context`` fitted the rows (None: it was off).
        max_dropped: ``data.max_rows_dropped``, the largest fraction of ``rows`` that may be dropped.
        max_length: the length each row was cut at (default: the trainer's; with padding-free packing the
            trainer's is the packed rows' length).

    Raises:
        TrialInputError: naming the fix: a longer ``max_length`` (the tokens the shortest row needs
            even with its minimal context, when fitting was on), or ``data.fit_context``.
    """
    dropped = rows - _rows_kept(trainer.train_dataset) if rows else 0
    if not dropped or (dropped < rows and dropped <= max_dropped * rows):
        return
    key = "train" if recipe == "sft" else recipe  # the config section of the recipe
    head = (f"{recipe}: all {rows} rows" if dropped >= rows else f"{recipe}: {dropped} of {rows} rows "
            f"(more than data.max_rows_dropped={max_dropped:g} of them)")
    head += f" dropped by TRL (no trainable token left after truncation to max_length={max_length or trainer.args.max_length})"
    rest = "" if dropped >= rows else "; or data.max_rows_dropped=1 to train on the rest"
    if fit is None:
        raise TrialInputError(f"{head}; raise {key}.max_length, or set data.fit_context=true (conversation rows "
                              f"then lose their oldest context instead of their targets){rest}")
    floor = f" (the shortest needs ~{fit.over_floor} tokens)" if fit.over_floor else ""
    raise TrialInputError(f"{head}; with data.fit_context, {fit.over} of them are over even with their minimal "
                          f"context (system and tools header, last user message, target){floor}: raise "
                          f"{key}.max_length{rest}")


def save_whole(final: Path, save: Any) -> Path:
    """Have ``save(folder)`` write a model folder that appears at ``final`` only whole.

    ``save`` writes into ``.final-saving`` in the same parent, which is then renamed to ``final`` (an earlier
    ``final`` is first renamed aside to ``.final-replaced`` and removed after). A process killed while saving
    leaves no ``final``, or the earlier one as it was; before, a kill mid-save left a ``final`` holding the
    model and no tokenizer, or the new weights beside the earlier run's tokenizer. The leftovers of a killed
    save are removed by the next one.

    Returns:
        The temporary folder it was saved into.
    """
    import shutil

    saving, replaced = final.with_name(f".{final.name}-saving"), final.with_name(f".{final.name}-replaced")
    for leftover in (saving, replaced):
        shutil.rmtree(leftover, ignore_errors=True)
    saving.parent.mkdir(parents=True, exist_ok=True)
    save(saving)
    if final.exists():
        final.rename(replaced)
    saving.rename(final)
    shutil.rmtree(replaced, ignore_errors=True)
    return saving


def finish(trainer: Any, recipe: str, out_dir: Path, rows: int, tokens_per_row: float,
           resumed_from: Path | None) -> tuple[Any, TrainResult]:
    """Merge LoRA if any, save the final model + tokenizer (whole or not at all: ``save_whole``) and fill a
    ``TrainResult``."""
    model = trainer.model
    if hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()
    unpatch_forward(model)
    final = Path(out_dir) / "final"

    def save(folder: Path) -> None:  # the tokenizer after the model, as resume's ``final_saved`` expects
        model.save_pretrained(folder)
        trainer.processing_class.save_pretrained(folder)

    save_whole(final, save)
    st = trainer.state
    runtime = next((h["train_runtime"] for h in reversed(st.log_history) if "train_runtime" in h), 0.0)
    args = trainer.args
    seen_rows = min(st.global_step * args.per_device_train_batch_size * args.gradient_accumulation_steps,
                    int(rows * max(st.num_train_epochs or 1, 1)) if args.max_steps <= 0 else 1 << 62)
    tokens = int(seen_rows * tokens_per_row)
    res = TrainResult(recipe=recipe, checkpoint_dir=str(final), loss_curve=loss_curve(st.log_history),
                      global_step=st.global_step, train_runtime_s=float(runtime), rows=rows, tokens=tokens,
                      tokens_per_s=tokens / runtime if runtime else 0.0, peak_memory_bytes=peak_memory_bytes(),
                      resumed_from=str(resumed_from) if resumed_from else None,
                      rows_dropped=max(0, rows - _rows_kept(trainer.train_dataset)))
    if res.rows_dropped:
        log.warning("%s: %d of %d rows dropped by TRL (no trainable token left after truncation to "
                    "max_length=%d; raise max_length)", recipe, res.rows_dropped, rows, args.max_length)
    log.info("%s: %d steps, loss %.4f -> %.4f, %.0f tokens/s", recipe, res.global_step, res.first_loss,
             res.last_loss, res.tokens_per_s)
    return model, res


def quiet(trainer: Any) -> None:
    """Drop the trainer's stdout printer: losses go to the log history and our logger instead."""
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
