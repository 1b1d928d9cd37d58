"""What offline evaluation costs on long prompts: wall time and peak memory of one role's eval split,
three ways, each in its own process (peak RSS is per process) under an address-space limit, so a way
that runs out of memory fails instead of swapping the machine:

    before   eval.batch_size rows a batch, no token bound, prompts as exported (what evaluation did
             before eval.max_batch_tokens and eval.fit_context; rows are now batched by length)
    bounded  eval.max_batch_tokens padded tokens a batch at most, prompts as exported
    fitted   bounded, and prompts fitted to max_length by the training rule (eval.fit_context)

    python /work/shared/tools/make_openclaw_sessions.py --sessions 20 --turns 5 --seed 1 --out S
    tracebridge import openclaw S --out T && tracebridge export T --out B
    python scripts/bench_eval.py --bundle B/<bundle_id> [--role worker] [--max-length 2048] [--mem-gb 8]
    python scripts/bench_eval.py --smoke

The model is cpu_tiny's random-init one (evaluation cost does not depend on training) with
``--max-positions`` positions, so that no way cuts a prompt to the model's context (``eval.predict``);
``--vocab-size 151936`` gives it Qwen's output layer, whose logits dominate scoring (``--role verifier``,
pairs). The last lines print the ratios of the fitted way against ``before`` (or say that ``before`` ran
out of memory).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

WAYS = {
    "before": ["eval.max_batch_tokens=4611686018427387904", "eval.fit_context=false"],
    "bounded": ["eval.fit_context=false"],
    "fitted": ["eval.fit_context=true"],
}


def child(bundle: str, role: str, overrides: list[str]) -> None:
    """One evaluation; prints one JSON line (seconds, peak RSS, items, prompts fitted)."""
    import torch

    from tracebridge.eval.offline import evaluate_split
    from tracebridge.train.config import load_train_config
    from tracebridge.train.data import load_role_data
    from tracebridge.train.models import build_model_and_tokenizer

    cfg = load_train_config(str(ROOT / "configs/train/cpu_tiny.yaml"), [f"role={role}", *overrides])
    torch.set_num_threads(cfg.threads)
    data = load_role_data(Path(bundle), role)
    model, tok = build_model_and_tokenizer(cfg.model)
    t0 = time.perf_counter()
    res, _ = evaluate_split(model, tok, cfg, data)
    print(json.dumps({"s": time.perf_counter() - t0, "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "items": len(res.item_ids), "fit": res.extra.get("fit_context") or {}}))


def run(way: str, args: argparse.Namespace) -> dict:
    """One way in a child process under ``--mem-gb`` of address space."""
    limit = int(args.mem_gb * (1 << 30))
    ov = [*WAYS[way], f"train.max_length={args.max_length}", f"dpo.max_length={args.max_length}",
          f"eval.max_new_tokens={args.max_new_tokens}", f"model.max_position_embeddings={args.max_positions}",
          f"model.vocab_size={args.vocab_size}"]
    cmd = [sys.executable, __file__, "--child", "--bundle", args.bundle, "--role", args.role, "--", *ov]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, check=False, capture_output=True, text=True, cwd=ROOT,
                          preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_AS, (limit, limit)))
    if proc.returncode:
        oom = "can't allocate memory" in proc.stderr or "MemoryError" in proc.stderr
        why = f"out of memory under {args.mem_gb:g} GB" if oom else proc.stderr.strip().splitlines()[-1]
        return {"failed": why, "s": time.perf_counter() - t0}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bundle", help="An export bundle (default: the test fixture bundle).")
    ap.add_argument("--role", default="worker")
    ap.add_argument("--max-length", type=int, default=2048)
    ap.add_argument("--max-new-tokens", type=int, default=96)
    ap.add_argument("--max-positions", type=int, default=32768, help="The model's max_position_embeddings.")
    ap.add_argument("--vocab-size", type=int, default=0, help="The model's vocabulary (0 = the tokenizer's).")
    ap.add_argument("--mem-gb", type=float, default=8.0, help="Address-space limit of each evaluation.")
    ap.add_argument("--smoke", action="store_true", help="The fixture bundle, 256 tokens, 8 new tokens.")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("overrides", nargs="*", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.smoke:
        args.bundle, args.max_length, args.max_new_tokens = str(ROOT / "tests/data/train_views"), 256, 8
    args.bundle = args.bundle or str(ROOT / "tests/data/train_views")
    if args.child:
        child(args.bundle, args.role, args.overrides)
        return
    print(f"eval of {args.role} on {Path(args.bundle).name}: max_length {args.max_length}, "
          f"{args.max_new_tokens} new tokens, {args.mem_gb:g} GB address space per way")
    got = {}
    for way in WAYS:
        r = got[way] = run(way, args)
        if "failed" in r:
            print(f"{way:8} failed after {r['s']:.1f} s: {r['failed']}")
        else:
            fit = r["fit"]  # prompts and pairs apart (eval_prompts_fitted adds them up)
            said = (f"fitted {fit.get('fitted', 0)} of {fit.get('prompts', 0)} prompts, {fit.get('pairs_fitted', 0)} "
                    f"of {fit.get('pairs', 0)} pairs") if fit else "prompts as exported"
            print(f"{way:8} {r['s']:7.1f} s  peak RSS {r['rss_mb']:7.0f} MB  {r['items']} items, {said}")
    before, fitted = got["before"], got["fitted"]
    if "failed" in fitted:
        print("ratio: fitted failed")
    elif "failed" in before:
        print(f"ratio: before {before['failed']}; fitted ran in {fitted['s']:.1f} s at {fitted['rss_mb']:.0f} MB")
    else:
        print(f"ratio time fitted/before: {fitted['s'] / before['s']:.2f}  "
              f"peak RSS fitted/before: {fitted['rss_mb'] / before['rss_mb']:.2f}")


if __name__ == "__main__":
    main()
