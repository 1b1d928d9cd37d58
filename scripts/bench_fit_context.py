"""What ``data.fit_context`` costs and what it keeps: worker rows of a bundle, with and without it.

    python /work/shared/tools/make_openclaw_sessions.py --sessions 30 --turns 5 --seed 1 --out S
    tracebridge import openclaw S --out T && tracebridge export T --out B
    python scripts/bench_fit_context.py --bundle B/<bundle_id> [--max-lengths 512,2048]
    python scripts/bench_fit_context.py --smoke

For each max_length: the SFT records of the role's train split and its preference pairs, each
prepared by TRL (``run_sft``/``run_dpo`` building the trainer, one optimizer step on the tiny
model, not counted; saving the tiny model is) without fitting and with it. Printed per recipe: rows, rows TRL dropped, rows
fitted, rows over even with their minimal context, the fitting's own seconds and template calls,
and the preparation seconds (fitting included) of the trial.
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


def trial(recipe: str, records: list[dict[str, Any]], max_length: int, fit: bool, out: Path) -> dict[str, Any]:
    """One trial's preparation: seconds (training excluded), rows dropped and fitted."""
    from tracebridge.train import context_fit
    from tracebridge.train.config import DPORecipeConfig, SFTRecipeConfig
    from tracebridge.train.dpo import run_dpo
    from tracebridge.train.models import tiny_model_and_tokenizer
    from tracebridge.train.sft import run_sft

    model, tok = tiny_model_and_tokenizer()
    fitter = context_fit.fit_sft_records if recipe == "sft" else context_fit.fit_pref_records
    rep = fitter(records, tok, max_length)[1] if fit else None  # the counts; the trial fits again, timed
    cls, run = (SFTRecipeConfig, run_sft) if recipe == "sft" else (DPORecipeConfig, run_dpo)
    rc = cls(max_steps=1, max_length=max_length, batch_size=1, logging_steps=1)
    t0 = time.perf_counter()
    try:
        _, res = run(model, tok, records, rc, out, fit_context=fit)
        dropped, train_s = res.rows_dropped, res.train_runtime_s
    except ValueError as exc:  # require_rows: TRL dropped every row, before any training
        if "rows dropped by TRL" not in str(exc):
            raise
        dropped, train_s = len(records), 0.0
    return {"rows": len(records), "dropped": dropped, "fitted": rep.fitted if rep else 0,
            "over": rep.over if rep else "-", "fit_s": f"{rep.seconds:.2f}" if rep else "-",
            "calls": rep.template_calls if rep else "-", "prep_s": f"{time.perf_counter() - t0 - train_s:.2f}"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bundle", help="An export bundle (default: the test fixture bundle).")
    ap.add_argument("--role", default="worker")
    ap.add_argument("--max-lengths", default="512,2048")
    ap.add_argument("--smoke", action="store_true", help="The fixture bundle, one max_length.")
    args = ap.parse_args()
    import datasets

    from tracebridge.train.data import load_role_data, to_pref_records, to_sft_records

    datasets.disable_progress_bars()
    bundle = Path(args.bundle) if args.bundle and not args.smoke else ROOT / "tests/data/train_views"
    data = load_role_data(bundle, args.role)
    sets = {"sft": to_sft_records(data.split(data.sft, "train")),
            "dpo": to_pref_records(data.split(data.pref, "train"))}
    print(f"input: {len(sets['sft'])} SFT rows and {len(sets['dpo'])} pairs of {args.role} from {bundle.name}")
    print("recipe max_length fit  rows dropped fitted over fit_s calls prep_s")
    with tempfile.TemporaryDirectory() as tmp:
        for ml in [int(x) for x in args.max_lengths.split(",")][:1 if args.smoke else None]:
            for recipe, records in sets.items():
                for fit in (False, True):
                    if not records:
                        continue
                    r = trial(recipe, records, ml, fit, Path(tmp) / f"{recipe}-{ml}-{fit}")
                    print(f"{recipe:6} {ml:10} {fit!s:5} {r['rows']:4} {r['dropped']:7} {r['fitted']:6} "
                          f"{r['over']!s:>4} {r['fit_s']:>5} {r['calls']!s:>5} {r['prep_s']:>6}")


if __name__ == "__main__":
    main()
