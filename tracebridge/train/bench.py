"""Measuring one training configuration: TRL trainer, real-token meter, step clock, profile.

Used by ``scripts/bench_train_gpu.py``. A ``Case`` names a model shape, a recipe (sft | dpo)
and a ``throughput`` block (``None`` = TRL's defaults, the baseline). ``run_case`` builds a
fresh seeded model and the TRL trainer, applies the block through the same
``apply_throughput`` the recipes use, trains ``warmup`` untimed steps then up to ``steps``
timed steps (or ``budget_s`` seconds), and returns tokens/s counted from the batches the model
actually received (padding excluded), MFU (``tracebridge.train.flops``) and peak memory.

Imports: torch, transformers, trl, datasets and our light modules only (no pydantic/omegaconf).
"""

from __future__ import annotations

import contextlib
import gc
import logging
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from tracebridge.train import flops as fl
from tracebridge.train import synth
from tracebridge.train.throughput import apply_throughput

log = logging.getLogger(__name__)


@dataclass
class Case:
    """One configuration to measure."""

    name: str
    shape: str  # a configs/model YAML
    recipe: str  # sft | dpo
    options: dict[str, Any] | None = None  # throughput block; None = TRL defaults
    batch_size: int = 8
    max_length: int = 4096
    warmup: int = 3
    steps: int = 20
    budget_s: float = 30.0
    profile_steps: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def _sync() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


class TokenMeter:
    """Forward pre-hook on the trained model: real tokens, scored tokens, sum of squared lengths.

    Reads the batch the model receives (``attention_mask`` for padded batches, ``cu_seq_lens_q``
    for packed ones) and accumulates on the device, so it adds no host sync per step.
    """

    def __init__(self) -> None:
        self.active = False
        self._acc: Any = None

    def __call__(self, module: Any, args: tuple, kwargs: dict[str, Any]) -> None:
        if not self.active:
            return
        import torch

        ids = kwargs.get("input_ids", args[0] if args else None)
        am, cu, labels = kwargs.get("attention_mask"), kwargs.get("cu_seq_lens_q"), kwargs.get("labels")
        if am is not None and am.dim() == 2:
            lens = am.sum(1)
        elif cu is not None:
            lens = cu.diff()
        else:
            lens = torch.full((ids.shape[0],), ids.shape[1], device=ids.device)
        lens = lens.to(torch.float64)
        scored = (labels[..., 1:] != -100).sum().to(torch.float64) if labels is not None else lens.sum() * 0
        vec = torch.stack([lens.sum(), scored, lens.square().sum(), lens.new_tensor(float(lens.numel()))])
        self._acc = vec if self._acc is None else self._acc + vec

    def stats(self) -> fl.TokenStats:
        """The totals so far as ``TokenStats`` (one host sync, to read the device accumulator)."""
        if self._acc is None:
            return fl.TokenStats()
        t, s, q, n = (int(x) for x in self._acc.tolist())
        return fl.TokenStats(tokens=t, loss_tokens=s, sum_sq_len=q, sequences=n)


def step_clock(meter: TokenMeter, warmup: int, steps: int, budget_s: float, profile_steps: int = 0) -> Any:
    """A ``TrainerCallback`` timing steps ``warmup+1 .. warmup+steps`` (or until ``budget_s``),
    then optionally profiling ``profile_steps`` more, then stopping training."""
    from transformers import TrainerCallback

    class StepClock(TrainerCallback):
        def __init__(self) -> None:
            self.t0 = self.t1 = 0.0
            self.timed_steps = 0
            self.prof: Any = None
            self.prof_left = 0
            self.prof_s0 = self.prof_s = 0.0

        def on_step_begin(self, args, state, control, **kw):
            if state.global_step == warmup and not self.t0:
                _sync()
                self.t0 = time.perf_counter()
                meter.active = True

        def on_step_end(self, args, state, control, **kw):
            if self.prof is not None:
                self.prof_left -= 1
                if self.prof_left <= 0 and not self.prof_s:
                    _sync()
                    self.prof_s = time.perf_counter() - self.prof_s0
                    try:
                        self.prof.__exit__(None, None, None)
                    except Exception as exc:  # noqa: BLE001 - a profile is optional; the timing stands
                        log.warning("profiler did not stop cleanly: %s", exc)
                        self.prof_s = 0.0
                    control.should_training_stop = True
                return
            if not self.t0 or self.t1:
                return
            if state.global_step >= warmup + steps or time.perf_counter() - self.t0 > budget_s:
                _sync()
                self.t1 = time.perf_counter()
                meter.active = False
                self.timed_steps = state.global_step - warmup
                control.should_training_stop = True
                if profile_steps:
                    try:
                        prof = _profiler()
                        prof.__enter__()
                    except Exception as exc:  # noqa: BLE001 - a profile is optional; the timing stands
                        log.warning("profiler did not start: %s", exc)
                        return
                    self.prof, self.prof_left, self.prof_s0 = prof, profile_steps, time.perf_counter()
                    control.should_training_stop = False

    return StepClock()


def _profiler() -> Any:
    import torch
    from torch.profiler import ProfilerActivity, profile

    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if torch.cuda.is_available() else [])
    return profile(activities=acts)


KERNEL_GROUPS = (
    ("matmul", ("gemm", "cutlass", "xmma", "nvjet", "matmul", "cublas", "aten::mm", "aten::addmm", "aten::bmm")),
    ("attention", ("flash", "fmha", "attention", "attn", "sdpa", "varlen")),
    ("triton (liger/TRL fused head)", ("triton",)),
    ("optimizer", ("multi_tensor", "adam", "foreach")),
)


def profile_summary(prof: Any, wall_s: float | None = None) -> dict[str, Any]:
    """Device time by kernel group and the top kernels of a finished ``torch.profiler`` run."""
    from torch.autograd import DeviceType

    events = list(prof.key_averages())
    cuda = [e for e in events if getattr(e, "device_type", None) == DeviceType.CUDA]
    if cuda:
        rows = [(e.key, float(getattr(e, "self_device_time_total", None) or getattr(e, "self_cuda_time_total", 0)))
                for e in cuda]
    else:  # CPU-only run: operator self time stands in for kernel time
        rows = [(e.key, float(e.self_cpu_time_total)) for e in events if e.key.startswith("aten::")]
    total = sum(us for _, us in rows) or 1.0
    groups: dict[str, float] = {}
    for key, us in rows:
        low = key.lower()
        g = next((name for name, pats in KERNEL_GROUPS if any(p in low for p in pats)), "elementwise/other")
        groups[g] = groups.get(g, 0.0) + us
    top = sorted(rows, key=lambda r: -r[1])[:15]
    out = {"device_busy_s": total / 1e6, "share": {g: us / total for g, us in sorted(groups.items())},
           "top": [{"kernel": k[:90], "s": us / 1e6, "share": us / total} for k, us in top]}
    if wall_s:
        out["wall_s"] = wall_s
        out["device_idle_share"] = max(0.0, 1 - (total / 1e6) / wall_s)
    return out


@contextlib.contextmanager
def restored_module_globals() -> Iterator[None]:
    """Undo, on exit, module-level swaps (Liger's RoPE/RMSNorm/MLP) in the Qwen2/Llama modeling files,
    so a later baseline in the same process runs transformers' own code."""
    from transformers.models.llama import modeling_llama
    from transformers.models.qwen2 import modeling_qwen2

    saved = [(m, dict(vars(m))) for m in (modeling_qwen2, modeling_llama)]
    try:
        yield
    finally:
        for mod, snap in saved:
            for k, v in snap.items():
                if vars(mod).get(k) is not v:
                    setattr(mod, k, v)


def release(*objs: Any) -> None:
    """Drop references and return cached device memory."""
    import torch

    del objs
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def base_args(case: Case, out_dir: str, on_gpu: bool) -> dict[str, Any]:
    """What the baseline sets on TRL's config: only what it needs to run and to be measured."""
    return {"output_dir": out_dir, "max_steps": case.warmup + case.steps + case.profile_steps + 1000,
            "per_device_train_batch_size": case.batch_size, "max_length": case.max_length, "bf16": on_gpu,
            "use_cpu": not on_gpu, "report_to": "none", "disable_tqdm": True, "save_strategy": "no",
            "logging_steps": 1 << 30, "seed": 0, "data_seed": 0}


def build_trainer(case: Case, model: Any, tok: Any, data: list[dict], out_dir: str, on_gpu: bool) -> Any:
    """The TRL trainer of ``case`` (baseline, or with the case's throughput block applied)."""
    import copy

    from datasets import Dataset
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    args = base_args(case, out_dir, on_gpu)
    if case.recipe == "sft":
        from trl import SFTConfig, SFTTrainer

        if case.options is not None:
            args, model = apply_throughput("sft", args, model, case.options)
        trainer = SFTTrainer(model=model, args=SFTConfig(**args), train_dataset=Dataset.from_list(data),
                             processing_class=tok)
    else:
        from trl import DPOConfig

        ref = copy.deepcopy(model).eval()  # the recipe's `ref: model`: a frozen copy of the start
        if case.options is not None:
            args, model = apply_throughput("dpo", args, model, case.options)
            if args.get("precompute_ref_log_probs"):
                ref = None  # the starting policy scores the reference pass; no copy kept
        trainer = _timed_dpo_cls()(model=model, ref_model=ref, args=DPOConfig(**args),
                                   train_dataset=Dataset.from_list(data), processing_class=tok)
    for cb in (PrinterCallback, ProgressCallback):
        trainer.remove_callback(cb)
    return trainer


def _timed_dpo_cls() -> type:
    from trl import DPOTrainer

    class TimedDPOTrainer(DPOTrainer):
        """DPOTrainer that times its reference-log-prob precompute pass."""

        precompute_s = 0.0

        def _precompute_ref_logps(self, *a: Any, **kw: Any) -> Any:
            _sync()
            t = time.perf_counter()
            out = super()._precompute_ref_logps(*a, **kw)
            _sync()
            self.precompute_s += time.perf_counter() - t
            return out

    return TimedDPOTrainer


def run_case(case: Case, data: list[dict], tok: Any, on_gpu: bool, peak: float, dtype: Any) -> dict[str, Any]:
    """Train ``case`` briefly and measure it; the trained model is returned under ``"model"``."""
    import torch

    release()
    if on_gpu:
        torch.cuda.reset_peak_memory_stats()
    device = "cuda" if on_gpu else "cpu"
    t_start = time.perf_counter()
    model = synth.model_from_yaml(case.shape, device, dtype, vocab_size=len(tok), seed=0)
    shape = fl.Shape.from_config(model.config)
    meter = TokenMeter()
    model.register_forward_pre_hook(meter, with_kwargs=True)
    clock = step_clock(meter, case.warmup, case.steps, case.budget_s, case.profile_steps)
    trainer = build_trainer(case, model, tok, data, tempfile.mkdtemp(prefix="tb_bench_"), on_gpu)
    trainer.add_callback(clock)
    setup_s = time.perf_counter() - t_start
    trainer.train()
    stats = meter.stats()
    timed_s = clock.t1 - clock.t0 if clock.t1 else 0.0
    precompute_s = getattr(trainer, "precompute_s", 0.0)
    if precompute_s:  # charge the share of the reference pass that the timed pairs needed
        pairs = len(trainer.train_dataset)
        timed_s += precompute_s * min(1.0, stats.sequences / 2 / max(pairs, 1))
    work = fl.dpo_flops(shape, stats) if case.recipe == "dpo" else fl.train_flops(shape, stats)
    res = {"case": case.name, "shape": case.shape, "recipe": case.recipe, "timed_steps": clock.timed_steps,
           "timed_s": timed_s, "tokens": stats.tokens, "loss_tokens": stats.loss_tokens,
           "sequences": stats.sequences, "tokens_per_s": stats.tokens / timed_s if timed_s else 0.0,
           "tflops": work / timed_s / 1e12 if timed_s else 0.0, "mfu": fl.mfu(work, timed_s, peak),
           "peak_mem_gib": torch.cuda.max_memory_allocated() / 2 ** 30 if on_gpu else None,
           "setup_s": setup_s, "precompute_s": precompute_s, "levers": getattr(model, "tb_throughput", []),
           "options": case.options, "losses": [h["loss"] for h in trainer.state.log_history if "loss" in h],
           "params_m": sum(p.numel() for p in model.parameters()) / 1e6}
    if clock.prof is not None and clock.prof_s:
        try:
            res["profile"] = profile_summary(clock.prof, clock.prof_s)
        except Exception as exc:  # noqa: BLE001 - a profile is optional; the timing stands
            res["profile_error"] = f"{type(exc).__name__}: {exc}"
    res["model"] = trainer.model
    release(trainer)
    return res
