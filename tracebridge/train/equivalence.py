"""Does the optimized path compute the same thing? Per-token log-probs and gradients of the
default path (padded batch, transformers' SDPA, the model's own kernels) against the optimized
path (the same weights with a ``throughput`` block applied, fed as the optimized trainer feeds
it: TRL's padding-free collator for SFT, a padded batch unpadded in the model for DPO).

The tolerance comes from a noise floor measured in the same call: the largest difference the
default path shows against itself under changes that only reorder floating-point work — the
same rows one at a time (no padding), the attention through SDPA's reference (math) kernel, and
on CUDA the bf16 GEMMs without reduced-precision reductions. Kernels that differ only in
rounding stay within a few times that floor; a real bug (tokens attending across sequences,
shifted positions, a wrong mask) is orders of magnitude above it. (A floor from a rerun of one
path alone can be exactly 0 — the padded and one-row batches were bit-identical on an H200 for
the 0.5B shape — which would make any other kernel "fail".)
"""

from __future__ import annotations

import copy
import logging
import warnings
from typing import Any

from tracebridge.train.throughput import apply_throughput

log = logging.getLogger(__name__)


def _hidden(model: Any, batch: dict[str, Any]) -> Any:
    from tracebridge.train.packing import backbone_of

    keys = ("input_ids", "attention_mask", "position_ids", "cu_seq_lens_q", "cu_seq_lens_k", "max_length_q",
            "max_length_k")
    return backbone_of(model)(**{k: batch[k] for k in keys if k in batch}, use_cache=False).last_hidden_state


def token_logprobs(model: Any, batch: dict[str, Any], chunk: int = 2048) -> Any:
    """Log-prob of each scored next token (``labels != -100`` after the shift), fp32, in row order."""
    import torch

    hs = _hidden(model, batch)
    labels = batch["labels"].to(hs.device)
    h, y = hs[:, :-1], labels[:, 1:]
    keep = y != -100
    h, y = h[keep], y[keep]
    w = model.get_output_embeddings().weight
    out = []
    for i in range(0, h.shape[0], chunk):
        logits = (h[i:i + chunk] @ w.T).float()
        out.append(torch.log_softmax(logits, -1).gather(1, y[i:i + chunk, None]).squeeze(1))
    return torch.cat(out)


def padded_batch(rows: list[dict[str, list[int]]], device: str) -> dict[str, Any]:
    """Right-padded ``input_ids``/``attention_mask``/``labels`` of pre-tokenized rows."""
    import torch

    n = max(len(r["input_ids"]) for r in rows)
    ids = torch.zeros(len(rows), n, dtype=torch.long)
    am = torch.zeros(len(rows), n, dtype=torch.long)
    lab = torch.full((len(rows), n), -100, dtype=torch.long)
    for i, r in enumerate(rows):
        k = len(r["input_ids"])
        ids[i, :k], am[i, :k], lab[i, :k] = torch.tensor(r["input_ids"]), 1, torch.tensor(r["labels"])
    return {"input_ids": ids.to(device), "attention_mask": am.to(device), "labels": lab.to(device)}


def packed_batch(rows: list[dict[str, list[int]]], device: str) -> dict[str, Any]:
    """The batch TRL's padding-free collator makes of these rows (what optimized SFT trains on)."""
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    batch = DataCollatorForLanguageModeling(pad_token_id=0, padding_free=True)(
        [{"input_ids": r["input_ids"], "labels": r["labels"]} for r in rows])
    return {k: v.to(device) if hasattr(v, "to") else v for k, v in batch.items()}


def _grads(model: Any, lp: Any) -> dict[str, Any]:
    model.zero_grad(set_to_none=True)
    (-lp.mean()).backward()
    return {n: p.grad.float() for n, p in model.named_parameters() if p.grad is not None}


def _cosine(a: dict[str, Any], b: dict[str, Any]) -> float:
    dot = na = nb = 0.0
    for n, g in a.items():
        h = b.get(n)
        if h is None:
            return float("nan")
        dot += float((g * h).sum())
        na += float(g.square().sum())
        nb += float(h.square().sum())
    return dot / max((na * nb) ** 0.5, 1e-30)


def _diff(a: Any, b: Any) -> dict[str, float]:
    d = (a - b).abs()
    return {"mean_abs": float(d.mean()), "max_abs": float(d.max()), "mean_logprob": float(a.mean())}


def _floor(a: dict[str, float], b: dict[str, float]) -> dict[str, float]:
    return {k: max(a[k], b[k]) if k != "mean_logprob" else a[k] for k in a}


def kernel_order_floor(model: Any, batch: dict[str, Any], ref: Any) -> tuple[dict[str, float], list[str]]:
    """Largest log-prob difference from ``ref`` when the default path on ``batch`` runs its attention
    through SDPA's math kernel, or (CUDA) its bf16 GEMMs with full-precision reductions."""
    import contextlib

    import torch

    perturbations: list[tuple[str, Any]] = []
    try:
        from torch.nn.attention import SDPBackend, sdpa_kernel

        perturbations.append(("sdpa_math", lambda: sdpa_kernel([SDPBackend.MATH])))
    except ImportError:  # older torch
        pass
    if torch.cuda.is_available() and ref.is_cuda:
        @contextlib.contextmanager
        def exact_bf16_reduction() -> Any:
            m = torch.backends.cuda.matmul
            old = m.allow_bf16_reduced_precision_reduction
            m.allow_bf16_reduced_precision_reduction = not old
            try:
                yield
            finally:
                m.allow_bf16_reduced_precision_reduction = old

        perturbations.append(("bf16_reduction", exact_bf16_reduction))
    out = {"mean_abs": 0.0, "max_abs": 0.0, "mean_logprob": float(ref.mean())}
    used = []
    for name, ctx in perturbations:
        with torch.no_grad(), ctx():
            out = _floor(out, _diff(token_logprobs(model, batch), ref))
        used.append(name)
    return out, used


def _leak_control(model: Any, rows: list[dict[str, list[int]]], device: str) -> Any:
    """The optimized path with the sequence boundaries removed (one long sequence): a known bug."""
    import torch

    batch = packed_batch(rows, device)
    n = batch["input_ids"].shape[1]
    cu = torch.tensor([0, n], dtype=torch.int32, device=device)
    batch.update(cu_seq_lens_q=cu, cu_seq_lens_k=cu, max_length_q=n, max_length_k=n)
    with torch.no_grad():
        return token_logprobs(model, batch)


def compare(model: Any, recipe: str, options: dict[str, Any], rows: list[dict[str, list[int]]],
            scope: Any = None) -> dict[str, Any]:
    """Per-token log-prob and gradient agreement of the default and optimized paths on ``rows``.

    Args:
        model: trained weights, default path (left unchanged; a copy gets the levers).
        recipe: ``"sft"`` (optimized input = TRL padding-free batch) or ``"dpo"`` (padded batch,
            unpadded inside the model).
        options: the optimized ``throughput`` block.
        rows: pre-tokenized ``{"input_ids", "labels"}`` rows.
        scope: a context manager factory the optimized forward runs inside (e.g. one that undoes
            Liger's module-level patches afterwards); None = no scope.

    Returns:
        ``{"opt", "floor", "grad_cosine", "grad_cosine_floor", "tokens", "ok", "tolerance"}`` (``floor`` is
        the larger of ``floor_rows`` and ``floor_kernel``, see the module doc) and, with
        ``padding_free``, ``"leak_control"`` (the same path with sequence boundaries dropped) and
        ``"discriminative"`` (that known bug lands outside the tolerance, so the check has power).
    """
    import contextlib

    import torch

    device = str(next(model.parameters()).device)
    model.__dict__.pop("forward", None)  # drop TRL's fused-forward patch
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if getattr(model, "is_gradient_checkpointing", False):
            model.gradient_checkpointing_disable()
    model.train()
    base = padded_batch(rows, device)
    lp_base = token_logprobs(model, base)
    g_base = _grads(model, lp_base)
    lp_rows = torch.cat([token_logprobs(model, padded_batch([r], device)) for r in rows])
    g_rows = _grads(model, lp_rows)
    kernel_floor, perturbations = kernel_order_floor(model, base, lp_base.detach())
    opt_model = copy.deepcopy(model)
    with (scope() if scope else contextlib.nullcontext()):
        _, opt_model = apply_throughput(recipe, {}, opt_model, options)
        batch = packed_batch(rows, device) if recipe == "sft" else base
        lp_opt = token_logprobs(opt_model, batch)
        g_opt = _grads(opt_model, lp_opt)
        leak = _leak_control(opt_model, rows, device) if options.get("padding_free") else None
    model.zero_grad(set_to_none=True)
    res = {"tokens": int(lp_base.numel()), "opt": _diff(lp_opt.detach(), lp_base.detach()),
           "floor": _floor(_diff(lp_rows.detach(), lp_base.detach()), kernel_floor),
           "floor_rows": _diff(lp_rows.detach(), lp_base.detach()), "floor_kernel": kernel_floor,
           "floor_perturbations": ["one_row_batches", *perturbations], "grad_cosine": _cosine(g_opt, g_base),
           "grad_cosine_floor": _cosine(g_rows, g_base), "levers": getattr(opt_model, "tb_throughput", [])}
    tol_mean = 3 * res["floor"]["mean_abs"] + 1e-4
    tol_max = 3 * res["floor"]["max_abs"] + 1e-3
    res["ok"] = bool(res["opt"]["mean_abs"] <= tol_mean and res["opt"]["max_abs"] <= tol_max
                     and res["grad_cosine"] >= min(0.999, res["grad_cosine_floor"] - 0.01))
    res["tolerance"] = {"mean_abs": tol_mean, "max_abs": tol_max}
    if leak is not None:  # would the check catch tokens attending across sequences?
        res["leak_control"] = _diff(leak, lp_base.detach())
        res["discriminative"] = res["leak_control"]["mean_abs"] > tol_mean
    del opt_model, g_base, g_rows, g_opt
    return res
