"""GPU training throughput: TRL defaults against our optimized recipe, same model, same data.

For each model shape (``configs/model/qwen2.5-0.5b.yaml``, ``qwen2.5-1.5b.yaml``; random init,
bf16) and each recipe (SFT, DPO), trains (a) TRL's ``SFTTrainer``/``DPOTrainer`` at their
defaults (only batch size, max_length, bf16 and steps set) and (b) the same trainer with our
``throughput`` block (``tracebridge.train.throughput``: padding-free packing with varlen
attention, Liger kernels, no gradient checkpointing, bigger micro-batches, background collate,
precomputed DPO reference log-probs). Measures real (non-padding) tokens/s, MFU
(``tracebridge.train.flops``: attention and LM head included) and peak memory, after warm-up
steps; checks per-token log-probs and gradients of both paths on identical batches; optionally
an ablation ladder (one lever added per row) and a kernel profile of an optimized run.
Data: synthetic worker_sft-like agent conversations, 192..4096 tokens, long-tailed.

    python scripts/bench_train_gpu.py --out OUT                       # both shapes, SFT + DPO
    python scripts/bench_train_gpu.py --shapes configs/model/qwen2.5-0.5b.yaml --recipes sft --ablation
    python scripts/bench_train_gpu.py --cpu-smoke                     # same code path, tiny, CPU

Prints a results table, then the optimized/default tokens/s ratios LAST.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from tracebridge.train import bench, equivalence, synth
from tracebridge.train import flops as fl
from tracebridge.train.gpu_check import number_arg

log = logging.getLogger("bench_train_gpu")

SHAPES = ["configs/model/qwen2.5-0.5b.yaml", "configs/model/qwen2.5-1.5b.yaml"]
# Token budget of one optimized micro-batch per shape (fits an 80 GB card with Liger, no checkpointing).
MICRO_TOKENS = {"qwen2.5-0.5b": 16384, "qwen2.5-1.5b": 16384}
DPO_TOKENS = {"qwen2.5-0.5b": 24576, "qwen2.5-1.5b": 16384}
TARGETS = {"sft": 2.5, "dpo": 2.0}


def optimized(recipe: str, micro_tokens: int, pairs: int) -> dict:
    """The optimized throughput block (what configs/train/gpu.yaml sets)."""
    common = {"padding_free": True, "attention": "auto", "liger": True, "gradient_checkpointing": False,
              "dataloader_workers": 2}
    if recipe == "sft":
        return common | {"micro_batch_tokens": micro_tokens}
    return common | {"batch_size": pairs, "precompute_ref": True}


def fallbacks(opts: dict) -> list[dict]:
    """Ever safer variants of ``opts`` to try when a run fails (first is ``opts``)."""
    out = [opts, opts | {"liger": False}, opts | {"liger": False, "attention": "segments"}]
    if "micro_batch_tokens" in opts:
        out.append(out[-1] | {"micro_batch_tokens": opts["micro_batch_tokens"] // 2})
    if "batch_size" in opts:
        out.append(out[-1] | {"batch_size": max(1, opts["batch_size"] // 2)})
    return out


def ablation(micro_tokens: int, compile_row: bool = True) -> list[tuple[str, dict]]:
    """Cumulative SFT ladder: each row adds one lever to the previous one (compile replaces liger)."""
    rows = [("+ no grad checkpointing", {"gradient_checkpointing": False})]
    rows.append(("+ padding-free packing", rows[-1][1] | {"padding_free": True, "micro_batch_tokens": micro_tokens // 2}))
    rows.append(("+ 2x micro-batch", rows[-1][1] | {"micro_batch_tokens": micro_tokens}))
    rows.append(("+ liger kernels", rows[-1][1] | {"liger": True}))
    if compile_row:  # inductor needs minutes of C++ compile on a CPU: GPU runs only
        rows.append(("+ compile instead of liger", rows[-1][1] | {"liger": False, "compile": True}))
    return rows


def dpo_rows_as_tokens(rows: list[dict], tok, k: int) -> list[dict]:
    """Prompt+chosen of ``k`` preference rows as pre-tokenized rows (loss on the completion)."""
    out = []
    for r in rows[:k]:
        p, c = tok(r["prompt"])["input_ids"], tok(r["chosen"])["input_ids"]
        out.append({"input_ids": p + c, "labels": [-100] * len(p) + c})
    return out


class Bench:
    """Runs cases in order under a global deadline and keeps every result."""

    def __init__(self, a: argparse.Namespace) -> None:
        import torch

        self.a = a
        self.on_gpu = torch.cuda.is_available() and not a.cpu_smoke
        self.dtype = torch.bfloat16 if self.on_gpu else torch.float32
        self.device_name = torch.cuda.get_device_name(0) if self.on_gpu else "cpu"
        self.peak = a.peak_tflops * 1e12 if a.peak_tflops else (fl.peak_flops(self.device_name) if self.on_gpu else 0.0)
        self.t0 = time.perf_counter()
        self.results: list[dict] = []
        self.out = Path(a.out) if a.out else None
        if self.out:
            self.out.mkdir(parents=True, exist_ok=True)

    def left(self) -> float:
        return self.a.deadline_s - (time.perf_counter() - self.t0)

    def record(self, res: dict) -> dict:
        res = {k: v for k, v in res.items() if k != "model"}
        self.results.append(res)
        log.info("%s", json.dumps(res, default=str))
        if self.out:
            with open(self.out / "results.jsonl", "a") as f:
                f.write(json.dumps(res, default=str) + "\n")
        return res

    def run(self, case: bench.Case, data: list, tok, variants: list[dict] | None = None) -> dict | None:
        """Run ``case`` (trying ``variants`` of its options in turn); keep its model in the result."""
        if self.left() <= 0:
            self.record({"case": case.name, "skipped": "deadline"})
            return None
        errors = []
        for opts in variants or [case.options]:
            case.options = opts
            try:
                if opts is None:
                    return bench.run_case(case, data, tok, self.on_gpu, self.peak, self.dtype)
                with bench.restored_module_globals():
                    return bench.run_case(case, data, tok, self.on_gpu, self.peak, self.dtype)
            except Exception as exc:  # noqa: BLE001 - record, fall back, keep the run going
                errors.append(f"{opts}: {type(exc).__name__}: {exc}")
                log.warning("case %s failed with %s:\n%s", case.name, opts, traceback.format_exc(limit=6))
                bench.release()
        self.record({"case": case.name, "failed": errors})
        return None


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    for name in ("transformers", "datasets", "trl", "accelerate", "httpx", "torch._dynamo", "torch._inductor"):
        logging.getLogger(name).setLevel(logging.ERROR)
    import datasets
    import torch

    datasets.disable_progress_bars()
    os.environ.setdefault("TQDM_DISABLE", "1")
    if a.cpu_smoke:
        torch.set_num_threads(1)
    b = Bench(a)
    shape0 = synth.read_shape(ROOT / a.shapes[0])
    vocab = a.vocab or int(shape0.get("vocab_size") or 512)
    tok = synth.word_tokenizer(vocab)
    sft = synth.synth_sft(a.rows, vocab, seed=0, min_len=a.min_len, max_len=a.max_length, median=a.median)
    pref = synth.synth_dpo(a.rows, vocab, seed=0, min_len=a.min_len, max_len=a.max_length, median=a.median)
    mean_len = sum(len(r["input_ids"]) for r in sft) / len(sft)
    log.info("device %s, peak %.0f TFLOP/s, %d SFT rows (mean %.0f tokens), %d DPO pairs, torch %s",
             b.device_name, b.peak / 1e12, len(sft), mean_len, len(pref), torch.__version__)
    eq_rows = [r for r in sft if len(r["input_ids"]) <= a.max_length][: a.eq_rows]
    for shape in a.shapes:
        name = Path(shape).stem
        micro = a.micro_tokens or MICRO_TOKENS.get(name, 16384)
        for recipe in a.recipes:
            steps = a.steps if recipe == "sft" else a.dpo_steps
            warm = a.warmup
            base = bench.Case(f"{name} {recipe} TRL default", str(ROOT / shape), recipe, None, a.batch_size,
                              a.max_length, warm, steps, a.budget_s)
            pairs = max(1, (a.dpo_tokens or DPO_TOKENS.get(name, 16384)) // int(2 * mean_len))
            opts = optimized(recipe, micro, pairs)
            opt = bench.Case(f"{name} {recipe} optimized", str(ROOT / shape), recipe, opts, a.batch_size,
                             a.max_length, warm, steps, a.budget_s,
                             profile_steps=a.profile_steps if shape == a.shapes[-1] and recipe == "sft" else 0)
            data = sft if recipe == "sft" else pref[: (warm + steps + 2) * max(a.batch_size, pairs)]
            rb = b.run(base, data, tok)
            if rb is not None:
                model = rb.pop("model")
                model.zero_grad(set_to_none=True)
                b.record(rb)
            ro = b.run(opt, data, tok, fallbacks(opts))
            if ro is not None:
                ro.pop("model", None)
                b.record(ro)
            if rb is not None and ro is not None and b.left() > 0:
                rows = eq_rows if recipe == "sft" else dpo_rows_as_tokens(pref, tok, a.eq_rows)
                try:
                    eq = equivalence.compare(model, recipe, ro["options"], rows, scope=bench.restored_module_globals)
                except Exception as exc:  # noqa: BLE001 - report it; the timings stand
                    log.warning("equivalence check failed to run:\n%s", traceback.format_exc(limit=6))
                    eq = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
                b.record({"case": f"{name} {recipe} equivalence", **eq})
            model = None
            bench.release()
    if a.ablation and "sft" in a.recipes:  # last: the targets above come first under the deadline
        run_ablation(b, a, sft, tok)
    return report(b)


def run_ablation(b: Bench, a: argparse.Namespace, sft: list[dict], tok: Any) -> None:
    """The SFT lever ladder on the first shape: each row adds one lever to the row before."""
    name = Path(a.shapes[0]).stem
    for label, o in ablation(a.micro_tokens or MICRO_TOKENS.get(name, 16384), compile_row=not a.cpu_smoke):
        r = b.run(bench.Case(f"{name} sft {label}", str(ROOT / a.shapes[0]), "sft", o, a.batch_size,
                             a.max_length, a.warmup, a.steps, a.budget_s), sft, tok)
        if r is not None:
            r.pop("model", None)
            b.record(r)


def report(b: Bench) -> int:
    """Print the table, write summary.json, print the ratios last; non-zero if a check failed."""
    runs = [r for r in b.results if "tokens_per_s" in r]
    print(f"\n{'case':44s} {'tok/s':>9s} {'TFLOP/s':>8s} {'MFU':>6s} {'mem GiB':>8s} {'steps':>5s}  levers")
    for r in runs:
        mem = f"{r['peak_mem_gib']:.1f}" if r.get("peak_mem_gib") is not None else "-"
        print(f"{r['case']:44s} {r['tokens_per_s']:9.0f} {r['tflops']:8.1f} {100 * r['mfu']:5.1f}% {mem:>8s} "
              f"{r['timed_steps']:5d}  {', '.join(r['levers']) or 'TRL defaults'}")
    for r in b.results:
        if "error" in r:
            print(f"{r['case']:44s} ERROR {r['error']}")
        elif "grad_cosine" in r:
            print(f"{r['case']:44s} logprob |d| mean {r['opt']['mean_abs']:.2e} max {r['opt']['max_abs']:.2e} "
                  f"(floor {r['floor']['mean_abs']:.2e}/{r['floor']['max_abs']:.2e}), grad cos "
                  f"{r['grad_cosine']:.5f} (floor {r['grad_cosine_floor']:.5f}) -> {'ok' if r['ok'] else 'FAIL'}"
                  + (f"; leak control |d| {r['leak_control']['mean_abs']:.2e} "
                     f"({'discriminative' if r['discriminative'] else 'NOT discriminative at these weights'})"
                     if "leak_control" in r else ""))
        elif "failed" in r or "skipped" in r:
            print(f"{r['case']:44s} {r.get('skipped') or r['failed']}")
        if r.get("profile"):
            p = r["profile"]
            idle = f", device idle {100 * p['device_idle_share']:.0f}% of wall" if "device_idle_share" in p else ""
            print(f"profile {r['case']}: " + ", ".join(f"{k} {100 * v:.0f}%" for k, v in p["share"].items()) + idle)
            for k in p["top"][:8]:
                print(f"    {100 * k['share']:5.1f}%  {k['kernel']}")
    by = {r["case"]: r for r in runs}
    ratios, parts = {}, []
    for key in sorted({(r["case"].split()[0], r["recipe"]) for r in runs}):
        d, o = by.get(f"{key[0]} {key[1]} TRL default"), by.get(f"{key[0]} {key[1]} optimized")
        if d and o and d["tokens_per_s"]:
            ratios[f"{key[1]}_{key[0]}"] = x = o["tokens_per_s"] / d["tokens_per_s"]
            parts.append(f"{key[1]} {key[0]} {x:.2f}x (target {TARGETS[key[1]]}x), MFU {100 * o['mfu']:.1f}%")
    eq_ok = all(r["ok"] for r in b.results if r["case"].endswith("equivalence"))
    summary = {"device": b.device_name, "peak_tflops": b.peak / 1e12, "ratios": ratios, "equivalence_ok": eq_ok,
               "wall_s": time.perf_counter() - b.t0, "results": b.results}
    if b.out:
        (b.out / "summary.json").write_text(json.dumps(summary, indent=1, default=str))
    print(f"wall {summary['wall_s']:.0f} s on {b.device_name}; equivalence {'ok' if eq_ok else 'FAILED'}")
    print("ratio optimized/TRL default tokens/s: " + ("; ".join(parts) or "none measured"))
    return 0 if ratios and eq_ok else 1


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="exit codes: 0 ratios measured and equivalence ok, 1 otherwise, 2 bad flags")
    ap.add_argument("--shapes", type=lambda s: s.split(","), default=SHAPES, help="configs/model YAMLs, comma-separated")
    ap.add_argument("--recipes", type=lambda s: s.split(","), default=["sft", "dpo"], help="sft,dpo")
    ap.add_argument("--steps", type=number_arg(int, 1), default=15, help="timed SFT steps per case (after warm-up)")
    ap.add_argument("--dpo-steps", type=number_arg(int, 1), default=8, help="timed DPO steps per case")
    ap.add_argument("--warmup", type=number_arg(int, 0), default=2, help="untimed steps first (compile, autotune, allocator)")
    ap.add_argument("--budget-s", type=number_arg(float, 0, strict=True), default=10.0, help="stop timing a case after this many seconds")
    ap.add_argument("--deadline-s", type=number_arg(float, 0, strict=True), default=270.0, help="start no case after this many seconds")
    ap.add_argument("--batch-size", type=number_arg(int, 1), default=8, help="TRL default micro-batch (rows or pairs)")
    ap.add_argument("--max-length", type=number_arg(int, 1), default=4096, help="longest row (data never exceeds it)")
    ap.add_argument("--min-len", type=number_arg(int, 1), default=192, help="shortest row")
    ap.add_argument("--median", type=number_arg(int, 1), default=900, help="median row length (log-normal)")
    ap.add_argument("--rows", type=number_arg(int, 1), default=640, help="synthetic SFT rows and DPO pairs")
    ap.add_argument("--vocab", type=number_arg(int, 0), default=0, help="vocabulary (0 = the shape's)")
    ap.add_argument("--micro-tokens", type=number_arg(int, 0), default=0, help="optimized SFT tokens per micro-batch (0 = per shape)")
    ap.add_argument("--dpo-tokens", type=number_arg(int, 0), default=0, help="optimized DPO tokens per micro-batch (0 = per shape)")
    ap.add_argument("--eq-rows", type=number_arg(int, 1), default=6, help="rows in the loss-equivalence check")
    ap.add_argument("--ablation", action="store_true", help="also run the one-lever-at-a-time SFT ladder")
    ap.add_argument("--profile-steps", type=number_arg(int, 0), default=2, help="profile this many steps of the last shape's "
                    "optimized SFT (0 = off)")
    ap.add_argument("--peak-tflops", type=number_arg(float, 0), default=0.0, help="dense bf16 peak (0 = from the device name)")
    ap.add_argument("--out", default=None, help="folder for results.jsonl and summary.json")
    ap.add_argument("--cpu-smoke", action="store_true", help="tiny model on CPU, seconds: the same code path")
    a = ap.parse_args(argv)
    if bad := sorted(set(a.recipes) - set(TARGETS)):  # found at the report, after every case ran
        ap.error(f"--recipes {','.join(a.recipes)}: unknown {', '.join(bad)}; choose from {','.join(TARGETS)}")
    if missing := [s for s in a.shapes if not (ROOT / s).is_file()]:
        ap.error(f"--shapes: no such model YAML {', '.join(missing)} (give configs/model/*.yaml)")
    if a.cpu_smoke:
        a.shapes, a.vocab, a.rows, a.min_len, a.max_length, a.median = (["configs/model/tiny.yaml"], 512, 48, 24,
                                                                       256, 96)
        a.steps = a.dpo_steps = 2
        a.warmup, a.batch_size, a.micro_tokens, a.dpo_tokens, a.eq_rows = 1, 4, 512, 1024, 3
        a.profile_steps = 1 if a.profile_steps else 0
    return a


if __name__ == "__main__":
    raise SystemExit(main())
