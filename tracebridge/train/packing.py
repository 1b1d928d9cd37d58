"""Padding-free training: packed-sequence attention backends and in-model unpadding.

Packed layout: the real tokens of a batch flattened into one row ``[1, T]``, position ids that
restart at 0 for each sequence, and ``cu_seq_lens`` (int32 ``[N+1]``, cumulative lengths).
TRL's padding-free SFT collator produces exactly this (packing ``bfd``); ``enable_unpadding``
builds it inside the model from a right- or left-padded batch (what ``DPOTrainer`` feeds), so the
linear layers, norms and attention of the backbone only see real tokens, and re-pads the last
hidden state so the trainer's loss code is unchanged.

Two attention functions are registered with transformers' ``AttentionInterface``:

* ``tb_varlen``: ``torch.nn.attention.varlen.varlen_attn`` (the FlashAttention-2 kernels built
  into CUDA builds of torch; one launch per layer, no flash-attn wheel). CUDA only.
* ``tb_segments``: one causal ``scaled_dot_product_attention`` per sequence (exact anywhere;
  the CPU path and the GPU fallback).

Both fall back to transformers' SDPA for batches that are not packed (generation, eval), so a
model keeps working after training. Their mask function builds no mask when the batch has no
padding mask (a packed batch), instead of transformers' ``T x T`` block-diagonal mask.
"""

from __future__ import annotations

import functools
import inspect
import logging
from typing import Any

log = logging.getLogger(__name__)

VARLEN = "tb_varlen"
SEGMENTS = "tb_segments"
BACKENDS = {"varlen": VARLEN, "segments": SEGMENTS}


# ---------------------------------------------------------------------------- packed spans
def _packed_spans(query: Any, attention_mask: Any, kwargs: dict[str, Any]) -> tuple[Any, int, list[int] | None] | None:
    """``(cu_seq_lens, max_len, host_lens)`` when the call is a packed row, else None.

    Uses the ``cu_seq_lens_q``/``max_length_q`` the collator or ``enable_unpadding`` passed; as a
    last resort derives them from ``position_ids`` (one device sync per layer: slow but right).
    """
    import torch

    if query.shape[0] != 1 or attention_mask is not None:
        return None
    cu = kwargs.get("cu_seq_lens_q")
    if cu is not None:
        host = kwargs.get("tb_seq_lens")
        max_len = kwargs.get("max_length_q") or max(host or cu.diff().tolist())
        return cu, int(max_len), host
    pos = kwargs.get("position_ids")
    if pos is None or pos.shape[-1] != query.shape[2] or query.shape[2] < 2:
        return None
    starts = (pos.reshape(-1) == 0).nonzero().reshape(-1)
    if starts.numel() <= 1 or int(starts[0]) != 0:
        return None
    cu = torch.cat([starts, starts.new_tensor([pos.shape[-1]])]).to(torch.int32)
    host = cu.diff().tolist()
    return cu, max(host), host


def _sdpa(module: Any, query: Any, key: Any, value: Any, attention_mask: Any, dropout: float,
          scaling: float | None, kwargs: dict[str, Any]) -> tuple[Any, None]:
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                  **kwargs)


# ---------------------------------------------------------------------------- attention functions
def segments_attention(module: Any, query: Any, key: Any, value: Any, attention_mask: Any, dropout: float = 0.0,
                       scaling: float | None = None, sliding_window: int | None = None,
                       **kwargs: Any) -> tuple[Any, None]:
    """Attention over a packed row as one causal SDPA call per sequence (transformers signature).

    ``query`` is ``[1, Hq, T, D]``, ``key``/``value`` ``[1, Hkv, T, D]``; returns ``[1, T, Hq, D]``.
    """
    import torch
    import torch.nn.functional as F

    spans = _packed_spans(query, attention_mask, kwargs)
    if spans is None or key.shape[2] != query.shape[2]:
        return _sdpa(module, query, key, value, attention_mask, dropout, scaling, kwargs)
    cu, _, host = spans
    lens = host if host is not None else cu.diff().tolist()
    gqa = query.shape[1] != key.shape[1]
    outs, start = [], 0
    for n in lens:
        end = start + int(n)
        outs.append(F.scaled_dot_product_attention(
            query[:, :, start:end], key[:, :, start:end], value[:, :, start:end], is_causal=True, scale=scaling,
            dropout_p=dropout, enable_gqa=gqa))
        start = end
    return torch.cat(outs, dim=2).transpose(1, 2).contiguous(), None


@functools.lru_cache(maxsize=1)
def _varlen_call() -> tuple[Any, dict[str, Any], bool]:
    """torch's ``varlen_attn`` and the keyword arguments its version takes for causal GQA attention."""
    from torch.nn.attention.varlen import varlen_attn

    params = inspect.signature(varlen_attn).parameters
    if "is_causal" in params:
        causal = {"is_causal": True}
    elif "window_size" in params:
        causal = {"window_size": (-1, 0)}
    else:
        raise RuntimeError("torch.nn.attention.varlen.varlen_attn takes neither is_causal nor window_size")
    return varlen_attn, causal, "enable_gqa" in params


def varlen_attention(module: Any, query: Any, key: Any, value: Any, attention_mask: Any, dropout: float = 0.0,
                     scaling: float | None = None, sliding_window: int | None = None,
                     **kwargs: Any) -> tuple[Any, None]:
    """Attention over a packed row with torch's FlashAttention varlen kernel (CUDA)."""
    import torch

    spans = _packed_spans(query, attention_mask, kwargs)
    if spans is None or key.shape[2] != query.shape[2]:
        return _sdpa(module, query, key, value, attention_mask, dropout, scaling, kwargs)
    if dropout:
        return segments_attention(module, query, key, value, attention_mask, dropout, scaling, **kwargs)
    cu, max_len, _ = spans
    fn, causal, native_gqa = _varlen_call()
    q = query[0].transpose(0, 1)
    k, v = key[0].transpose(0, 1), value[0].transpose(0, 1)
    extra = dict(causal)
    if q.shape[1] != k.shape[1]:
        if native_gqa:
            extra["enable_gqa"] = True
        else:
            rep = q.shape[1] // k.shape[1]
            k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
    cu = cu.to(device=q.device, dtype=torch.int32)
    out = fn(q.contiguous(), k.contiguous(), v.contiguous(), cu, cu, max_len, max_len, scale=scaling, **extra)
    return out.unsqueeze(0), None


def _padding_mask(*args: Any, attention_mask: Any = None, **kwargs: Any) -> Any:
    """No mask for packed rows (no padding mask given); transformers' SDPA mask otherwise."""
    if attention_mask is None:
        return None
    from transformers.masking_utils import sdpa_mask

    return sdpa_mask(*args, attention_mask=attention_mask, **kwargs)


def register_attention() -> None:
    """Register ``tb_varlen`` and ``tb_segments`` with transformers (idempotent)."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface

    for name, fn in ((VARLEN, varlen_attention), (SEGMENTS, segments_attention)):
        AttentionInterface.register(name, fn)
        AttentionMaskInterface.register(name, _padding_mask)


@functools.lru_cache(maxsize=1)
def varlen_selfcheck() -> tuple[bool, str]:
    """Run ``tb_varlen`` against ``tb_segments`` on random bf16 data, forward and backward (CUDA).

    Returns:
        ``(ok, reason)``; ``ok`` is False when torch lacks the kernel, it raises, or it disagrees.
    """
    import torch

    if not torch.cuda.is_available():
        return False, "no CUDA device"
    try:
        g = torch.Generator(device="cuda").manual_seed(0)
        lens, hq, hkv, d = [37, 200, 63], 8, 2, 64
        t = sum(lens)
        cu = torch.tensor([0, 37, 237, 300], dtype=torch.int32, device="cuda")
        kw = {"cu_seq_lens_q": cu, "max_length_q": max(lens), "tb_seq_lens": lens}
        outs, grads = [], []
        for fn in (varlen_attention, segments_attention):
            q = torch.randn(1, hq, t, d, device="cuda", dtype=torch.bfloat16, generator=g.manual_seed(1))
            k = torch.randn(1, hkv, t, d, device="cuda", dtype=torch.bfloat16, generator=g.manual_seed(2))
            v = torch.randn(1, hkv, t, d, device="cuda", dtype=torch.bfloat16, generator=g.manual_seed(3))
            for x in (q, k, v):
                x.requires_grad_(True)
            out, _ = fn(None, q, k, v, None, scaling=d ** -0.5, **kw)
            out.float().square().sum().backward()
            outs.append(out.float())
            grads.append(torch.cat([x.grad.float().flatten() for x in (q, k, v)]))
        err = ((outs[0] - outs[1]).norm() / outs[1].norm()).item()
        gerr = ((grads[0] - grads[1]).norm() / grads[1].norm()).item()
    except Exception as exc:  # noqa: BLE001 - any failure means "use the fallback"
        return False, f"{type(exc).__name__}: {exc}"
    ok = err < 2e-2 and gerr < 5e-2
    return ok, f"relative error vs per-sequence SDPA: output {err:.1e}, grads {gerr:.1e}"


def resolve_backend(requested: str) -> str:
    """The attention function name for ``requested`` (auto | varlen | segments | sdpa).

    ``auto`` takes ``tb_varlen`` on CUDA when its self-check passes, else ``tb_segments``.

    Raises:
        ValueError: ``varlen`` requested where it cannot run.
    """
    import torch

    if requested == "sdpa":
        return "sdpa"
    if requested == "segments" or (requested == "auto" and not torch.cuda.is_available()):
        return SEGMENTS
    ok, reason = varlen_selfcheck()
    if ok:
        log.info("attention: tb_varlen (%s)", reason)
        return VARLEN
    if requested == "varlen":
        raise ValueError(f"throughput.attention=varlen: torch's varlen attention is unusable here ({reason}); "
                         "use auto or segments")
    log.warning("attention: tb_varlen unusable (%s); using tb_segments", reason)
    return SEGMENTS


def set_attention(model: Any, name: str) -> None:
    """Switch ``model`` (and its sub-configs) to attention function ``name``."""
    register_attention()
    if model.config._attn_implementation == name:
        return
    try:
        model.set_attn_implementation(name)
    except Exception as exc:  # noqa: BLE001 - older transformers: set the config field directly
        log.debug("set_attn_implementation(%s) failed (%s); setting the config", name, exc)
    if model.config._attn_implementation != name:
        model.config._attn_implementation = name


# ---------------------------------------------------------------------------- in-model unpadding
def backbone_of(model: Any) -> Any:
    """The decoder stack (``Qwen2Model``/``LlamaModel``) of a causal LM, PEFT-wrapped or not."""
    m = model.get_base_model() if hasattr(model, "get_base_model") else model
    return getattr(m, m.base_model_prefix, m)


class Unpadder:
    """Forward hooks on the backbone: padded ``[B, L]`` batch in, packed ``[1, T]`` through, re-padded out.

    Acts only on full-sequence forwards without cache (``use_cache=False``, as TRL's trainers
    call the model); generation and cached forwards pass through untouched. Packed batches that
    already carry ``cu_seq_lens_q`` get their host-side lengths added once per forward.
    """

    def __init__(self, host_lens: bool = True) -> None:
        self.host_lens = host_lens
        self.pending: tuple[int, int, Any] | None = None
        self.calls = 0

    def pre(self, module: Any, args: tuple, kwargs: dict[str, Any]) -> tuple[tuple, dict[str, Any]] | None:
        """Forward pre-hook: pack a padded full-sequence batch into ``[1, T]`` and remember how
        to re-pad; other forwards pass through (a packed one gains its host-side lengths)."""
        self.pending = None
        if args:
            kwargs = {"input_ids": args[0], **kwargs}
            args = ()
        am, ids = kwargs.get("attention_mask"), kwargs.get("input_ids")
        if kwargs.get("cu_seq_lens_q") is not None:
            if self.host_lens and kwargs.get("tb_seq_lens") is None:
                kwargs["tb_seq_lens"] = kwargs["cu_seq_lens_q"].diff().tolist()
            return args, kwargs
        if (ids is None or am is None or getattr(am, "dim", lambda: 0)() != 2 or kwargs.get("use_cache") is not False
                or kwargs.get("past_key_values") is not None or kwargs.get("inputs_embeds") is not None):
            return args, kwargs
        return (), self._pack(ids, am, kwargs)

    def _pack(self, ids: Any, am: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
        import torch

        b, seq = ids.shape
        lens = am.sum(1, dtype=torch.int32)
        host = lens.tolist()
        idx = am.reshape(-1).bool().nonzero().reshape(-1)  # the queue is drained by tolist() already
        pos = kwargs.get("position_ids")
        pos = (am.long().cumsum(1) - 1) if pos is None else pos.expand(b, seq)
        cu = torch.nn.functional.pad(lens.cumsum(0, dtype=torch.int32), (1, 0))
        self.pending = (b, seq, idx)
        self.calls += 1
        return {**kwargs, "input_ids": ids.reshape(-1)[idx][None], "attention_mask": None,
                "position_ids": pos.reshape(-1)[idx][None], "cu_seq_lens_q": cu, "cu_seq_lens_k": cu,
                "max_length_q": max(host), "max_length_k": max(host), "tb_seq_lens": host}

    def post(self, module: Any, args: tuple, kwargs: dict[str, Any], output: Any) -> Any:
        """Forward hook: re-pad a packed output's ``last_hidden_state`` to ``[B, L, H]`` (zeros
        at padding)."""
        if self.pending is None:
            return output
        b, seq, idx = self.pending
        self.pending = None
        hs = output.last_hidden_state
        full = hs.new_zeros(b * seq, hs.shape[-1]).index_copy(0, idx, hs[0])
        output.last_hidden_state = full.view(b, seq, hs.shape[-1])
        return output


def enable_unpadding(model: Any, host_lens: bool = True) -> Unpadder:
    """Install (once) the ``Unpadder`` hooks on ``model``'s backbone and return them.

    Args:
        model: a causal LM.
        host_lens: also hand per-sequence lengths as Python ints to the attention (``tb_segments``
            needs them; ``tb_varlen`` does not, and skipping them saves a device sync per forward).
    """
    bb = backbone_of(model)
    existing = getattr(bb, "_tb_unpadder", None)
    if existing is not None:
        existing.host_lens = existing.host_lens or host_lens
        return existing
    up = Unpadder(host_lens)
    bb.register_forward_pre_hook(up.pre, with_kwargs=True)
    bb.register_forward_hook(up.post, with_kwargs=True)
    bb._tb_unpadder = up
    return up


# ---------------------------------------------------------------------------- kernels
def liger_available() -> bool:
    """Liger's Triton kernels can run here (package importable and a CUDA device)."""
    import importlib.util

    import torch

    return torch.cuda.is_available() and importlib.util.find_spec("liger_kernel") is not None


def apply_liger(model: Any) -> None:
    """Liger's RMSNorm, SwiGLU MLP and RoPE kernels on ``model`` (not its fused linear
    cross-entropy: TRL's fused LM head already computes the loss without full logits).

    Liger also swaps module-level functions/classes of the architecture's modeling file (RoPE),
    which affects every model of that architecture in the process from then on.
    """
    from liger_kernel.transformers import _apply_liger_kernel_to_instance

    m = model.get_base_model() if hasattr(model, "get_base_model") else model
    _apply_liger_kernel_to_instance(model=m, rope=True, rms_norm=True, swiglu=True, cross_entropy=False,
                                    fused_linear_cross_entropy=False)


def compile_blocks(model: Any, backend: str = "inductor") -> int:
    """``torch.compile`` each decoder layer's MLP and norms (dynamic shapes); returns modules compiled.

    Attention stays eager: packed rows change length every step and the varlen call takes
    host-side lengths.
    """
    n = 0
    for layer in backbone_of(model).layers:
        for name in ("mlp", "input_layernorm", "post_attention_layernorm"):
            getattr(layer, name).compile(dynamic=True, backend=backend)
            n += 1
    return n
