"""GPU throughput levers for the SFT and DPO recipes: the ``throughput:`` config block.

A recipe's ``throughput`` block (``configs/train/*.yaml``, ``train.throughput`` / ``dpo.throughput``)
is parsed into ``ThroughputConfig`` and applied by ``apply_throughput(recipe, args, model,
options)`` (called by ``tracebridge.train.common`` just before the TRL trainer is built): it
changes the ``SFTConfig``/``DPOConfig`` keyword arguments and patches the model. An empty block
means TRL's defaults. Every lever keeps the objective: the same tokens get the same labels and
loss (``scripts/bench_train_gpu.py`` checks per-token losses of both paths on identical batches).

Levers:

* ``padding_free``: no compute on padding. SFT packs rows best-fit-decreasing into rows of
  ``micro_batch_tokens`` (TRL ``packing=bfd``; its collator passes sequence boundaries), each row first
  cut at the recipe's ``max_length`` and dropped when left with no trainable token, as without packing
  (``sft.row_cut_trainer_class``: TRL's packing alone cuts only at the packed length); DPO
  unpads chosen+rejected inside the model (``packing.enable_unpadding``). Attention runs per
  sequence (``attention``): ``varlen`` (torch's FlashAttention varlen kernel), ``segments``
  (SDPA per sequence), ``sdpa`` (transformers' block-diagonal mask; quadratic in the row).
* ``liger``: Liger RMSNorm / SwiGLU / RoPE Triton kernels (CUDA + ``liger-kernel``).
* ``compile``: ``torch.compile`` of each layer's MLP and norms (the alternative to ``liger``).
* ``gradient_checkpointing``: override (TRL defaults it on; off is ~25% faster when memory allows).
* ``batch_size``: per-device micro-batch override once padding is gone (rows, or DPO pairs).
* ``dataloader_workers``: collate in background workers, pinned memory.
* ``precompute_ref`` (DPO): reference log-probs in one no-grad pass before training; the policy
  itself is the reference (no second copy in memory), so micro-batches can grow.

Imports only the standard library at module level (no torch, omegaconf or pydantic): the GPU
benchmark imports it on machines that have neither.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field, fields
from typing import Any

log = logging.getLogger(__name__)

RECIPES = ("sft", "dpo")
ATTENTION = ("auto", "varlen", "segments", "sdpa")


@dataclass
class ThroughputConfig:
    """The ``throughput:`` block of a recipe (all off by default = TRL's defaults)."""

    padding_free: bool = field(default=False, metadata={
        "help": "No compute on padding: SFT packs rows into micro_batch_tokens rows (TRL bfd packing), DPO "
                "unpads pairs inside the model."})
    attention: str = field(default="auto", metadata={
        "help": "Attention over packed rows: auto (varlen on CUDA when its self-check passes, else segments) | "
                "varlen (torch FlashAttention varlen, CUDA) | segments (SDPA per sequence) | sdpa "
                "(transformers' block-diagonal mask, quadratic in the row length)."})
    micro_batch_tokens: int = field(default=16384, metadata={
        "help": "SFT with padding_free: tokens per packed row (one row per micro-batch). Must be >= the "
                "recipe's max_length, at which each row is still cut before packing."})
    batch_size: int = field(default=0, metadata={
        "help": "Per-device micro-batch override (SFT rows without packing, DPO pairs); 0 = the recipe's."})
    liger: bool = field(default=False, metadata={
        "help": "Liger RMSNorm/SwiGLU/RoPE Triton kernels; skipped with a warning without CUDA or liger-kernel."})
    compile: bool = field(default=False, metadata={
        "help": "torch.compile each layer's MLP and norms (dynamic shapes). Alternative to liger, not both."})
    gradient_checkpointing: bool | None = field(default=None, metadata={
        "help": "Override the recipe's gradient checkpointing; None = keep it."})
    dataloader_workers: int = field(default=0, metadata={
        "help": "Background collate workers (persistent, pinned memory); 0 = collate in the training loop."})
    precompute_ref: bool = field(default=False, metadata={
        "help": "DPO: reference log-probs in one no-grad pass before training, with the starting policy as "
                "the reference (no reference copy kept in memory)."})
    precompute_batch_size: int = field(default=0, metadata={
        "help": "DPO precompute pass: pairs per forward; 0 = 2x the training micro-batch."})

    def problems(self, prefix: str, recipe: str) -> list[str]:
        """Every problem as ``prefix.key=value: what; fix``."""
        p = []
        if self.attention not in ATTENTION:
            p.append(f"{prefix}.attention={self.attention}: use one of {', '.join(ATTENTION)}")
        if self.micro_batch_tokens < 64:
            p.append(f"{prefix}.micro_batch_tokens={self.micro_batch_tokens}: must be >= 64 (typical 8192..65536)")
        for k in ("batch_size", "dataloader_workers", "precompute_batch_size"):
            if getattr(self, k) < 0:
                p.append(f"{prefix}.{k}={getattr(self, k)}: must be >= 0 (0 = default)")
        if self.liger and self.compile:
            p.append(f"{prefix}.compile=true: liger already fuses the norms and MLP; set one of liger/compile")
        if recipe != "dpo" and (self.precompute_ref or self.precompute_batch_size):
            p.append(f"{prefix}.precompute_ref: only the dpo recipe has a reference model")
        return p


def _known() -> dict[str, Any]:
    return {f.name: f for f in fields(ThroughputConfig)}


def throughput_problems(recipe: str, options: dict[str, Any] | None, prefix: str | None = None) -> list[str]:
    """Problems of a raw ``throughput`` block (unknown keys included), ``[]`` when it is fine.

    Args:
        recipe: ``"sft"`` or ``"dpo"``.
        options: the block.
        prefix: how keys are named in messages (default ``<recipe>.throughput``).
    """
    prefix = prefix or f"{recipe}.throughput"
    if not options:
        return []
    import difflib

    known = _known()
    p = []
    for k in options:
        if k not in known:
            near = difflib.get_close_matches(k, list(known), n=1)
            p.append(f"{prefix}.{k}: unknown throughput option" + (f"; did you mean {near[0]}?" if near else
                                                                    f"; valid: {', '.join(known)}"))
    if p:
        return p
    return ThroughputConfig(**options).problems(prefix, recipe)


def parse_throughput(recipe: str, options: dict[str, Any] | None) -> ThroughputConfig:
    """A checked ``ThroughputConfig`` from a recipe's block.

    Raises:
        ValueError: every problem at once.
    """
    if recipe not in RECIPES:
        raise ValueError(f"recipe={recipe}: use one of {', '.join(RECIPES)}")
    p = throughput_problems(recipe, options)
    if p:
        raise ValueError("invalid throughput block:\n  " + "\n  ".join(p))
    return ThroughputConfig(**dict(options or {}))


def _set_checkpointing(args: dict[str, Any], on: bool) -> None:
    args["gradient_checkpointing"] = on
    if "activation_checkpointing" in args:
        args["activation_checkpointing"] = on


def _args_levers(recipe: str, cfg: ThroughputConfig, args: dict[str, Any]) -> list[str]:
    """Change the trainer arguments; return the levers applied."""
    applied = []
    if cfg.gradient_checkpointing is not None:
        _set_checkpointing(args, cfg.gradient_checkpointing)
        applied.append(f"gradient_checkpointing={cfg.gradient_checkpointing}")
    if cfg.batch_size:
        args["per_device_train_batch_size"] = cfg.batch_size
        applied.append(f"batch_size={cfg.batch_size}")
    if cfg.dataloader_workers:
        args.update(dataloader_num_workers=cfg.dataloader_workers, dataloader_persistent_workers=True,
                    dataloader_pin_memory=True, dataloader_prefetch_factor=4)
        applied.append(f"dataloader_workers={cfg.dataloader_workers}")
    if recipe == "sft" and cfg.padding_free:
        max_length = args.get("max_length") or 0
        if max_length > cfg.micro_batch_tokens:
            raise ValueError(f"sft.throughput.micro_batch_tokens={cfg.micro_batch_tokens}: smaller than "
                             f"max_length={max_length}; raise it (rows would be cut) or lower max_length")
        args.update(packing=True, packing_strategy="bfd", padding_free=True, max_length=cfg.micro_batch_tokens)
        if not cfg.batch_size:
            args["per_device_train_batch_size"] = 1
        applied.append(f"packing=bfd({cfg.micro_batch_tokens} tokens/row)")
    if recipe == "dpo" and cfg.precompute_ref:
        bs = cfg.precompute_batch_size or 2 * int(args.get("per_device_train_batch_size") or 8)
        args.update(precompute_ref_log_probs=True, precompute_ref_batch_size=bs)
        applied.append(f"precompute_ref(batch {bs})")
    return applied


def _model_levers(recipe: str, cfg: ThroughputConfig, model: Any) -> list[str]:
    """Patch the model; return the levers applied."""
    from tracebridge.train import packing

    applied = []
    if cfg.padding_free:
        name = packing.resolve_backend(cfg.attention)
        if name != "sdpa":
            packing.set_attention(model, name)
        packing.enable_unpadding(model, host_lens=name == packing.SEGMENTS)
        applied.append(f"padding_free(attention={name})")
    if cfg.liger:
        if packing.liger_available():
            packing.apply_liger(model)
            applied.append("liger(rms_norm,swiglu,rope)")
        else:
            log.warning("throughput.liger=true skipped: needs a CUDA device and the liger-kernel package")
    if cfg.compile:
        n = packing.compile_blocks(model)
        applied.append(f"compile({n} modules)")
    return applied


def apply_throughput(recipe: str, args: dict[str, Any], model: Any,
                     options: dict[str, Any] | None) -> tuple[dict[str, Any], Any]:
    """Apply a recipe's ``throughput`` block to the trainer arguments and the model.

    Args:
        recipe: ``"sft"`` or ``"dpo"``.
        args: keyword arguments about to build ``SFTConfig``/``DPOConfig`` (a changed copy is returned).
        model: the causal LM the trainer will train (patched in place).
        options: the block as a dict (empty = nothing changes).

    Returns:
        ``(args, model)``; ``model.tb_throughput`` lists the levers applied.

    Raises:
        ValueError: a bad block, or levers that contradict the recipe.
    """
    cfg = parse_throughput(recipe, options)
    args = dict(args)
    applied = _args_levers(recipe, cfg, args) + _model_levers(recipe, cfg, model)
    model.tb_throughput = applied
    log.info("%s throughput levers: %s", recipe, ", ".join(applied) or "none (TRL defaults)")
    return args, model


def describe(options: dict[str, Any] | None) -> dict[str, Any]:
    """The block with every default filled in (for reports)."""
    return asdict(ThroughputConfig(**dict(options or {})))
