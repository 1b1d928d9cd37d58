"""What a sweep trial pays before its first SFT step, with and without ``data.prepared_cache``.

    python scripts/bench_prepare.py --bundle BUNDLE [--role worker] [--rows 1000] [--num-proc 2]
    python scripts/bench_prepare.py --smoke

Each trial of a role/variant builds an ``SFTTrainer`` on the same records: TRL applies the chat
template, tokenizes with assistant masks, builds labels and truncates, all in the trial's process.
Measured here, wall seconds of building the trainer (the tiny tokenizer and model; a real BPE
tokenizer is slower still): a trial that prepares alone; with ``--num-proc N`` (``dataset_num_proc``);
the trial that prepares and stores the set; a trial that loads it. The last line is the ratio of
preparing to loading, what each further trial of the key saves.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def build(records: list[dict[str, Any]], cache: str | None, num_proc: int, out: Path) -> tuple[float, str]:
    """Wall seconds of preparing (or loading) the records for one trial's trainer, and how it went."""
    from tracebridge.train.config import SFTRecipeConfig
    from tracebridge.train.models import tiny_model_and_tokenizer
    from tracebridge.train.sft import run_sft

    model, tok = tiny_model_and_tokenizer()
    rc = SFTRecipeConfig(max_steps=1, max_length=2048, batch_size=1, logging_steps=1, dataset_num_proc=num_proc)
    t0 = time.perf_counter()
    _, res = run_sft(model, tok, records, rc, out, prepared_cache=cache)
    return time.perf_counter() - t0 - res.train_runtime_s, res.prepared


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bundle", help="An export bundle (default: the test fixture bundle).")
    ap.add_argument("--role", default="worker")
    ap.add_argument("--rows", type=int, default=1000, help="SFT rows of the role's train split (0 = all).")
    ap.add_argument("--num-proc", type=int, default=2)
    ap.add_argument("--smoke", action="store_true", help="The fixture bundle, 20 rows.")
    args = ap.parse_args()
    import datasets

    from tracebridge.train.data import load_role_data, to_sft_records

    datasets.disable_progress_bars()
    bundle = Path(args.bundle) if args.bundle and not args.smoke else ROOT / "tests/data/train_views"
    data = load_role_data(bundle, args.role)
    rows = data.split(data.sft, "train")
    n = 20 if args.smoke else (args.rows or len(rows))
    records = to_sft_records(rows[:n])
    with tempfile.TemporaryDirectory(prefix="bench-prepare-") as tmp:
        out = Path(tmp)
        build(records[:2], None, 0, out / "warm")  # imports and the tokenizer, paid once per process
        alone, _ = build(records, None, 0, out / "alone")
        procs, _ = build(records, None, args.num_proc, out / "procs")
        stored, how1 = build(records, str(out / "cache"), 0, out / "first")
        loaded, how2 = build(records, str(out / "cache"), 0, out / "second")
    if (how1, how2) != ("stored", "loaded"):
        raise SystemExit(f"the cache did not serve the second trial: {how1}, {how2}")
    print(f"input: {len(records)} SFT rows of {args.role} from {bundle}")
    print(f"prepare in the trial (TRL default):        {alone:7.2f} s")
    print(f"prepare with dataset_num_proc={args.num_proc}:           {procs:7.2f} s ({alone / procs:.2f}x)")
    print(f"first trial of a key (prepare + store):    {stored:7.2f} s")
    print(f"each further trial (load the stored set):  {loaded:7.2f} s")
    print(f"ratio prepare/load: {alone / loaded:.2f}")


if __name__ == "__main__":
    main()
