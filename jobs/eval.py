"""Re-evaluate job: load the final checkpoint of every trial of a finished sweep from storage,
evaluate each model again (one Ray task per trial) with changed eval settings, and push a new
report to ``<storage>/reports/<sweep id>-eval-<hash of the eval overrides>``.

Arguments: the sweep's config and overrides (they name the sweep, as for jobs/sweep.py), then
``--`` and the eval overrides (``eval.*``, ``data.eval_split``, ``data.max_eval_rows``).

Run directly:
    python jobs/eval.py configs/sweep/smoke.yaml bundle=tests/data/train_views storage=/tmp/tb-storage \
        -- eval.n_boot=2000 data.eval_split=validation
Submit:
    ray job submit --address http://127.0.0.1:8265 --working-dir . -- \
        python jobs/eval.py configs/sweep/demo.yaml bundle=$PWD/demo_out/bundles storage=$PWD/storage -- eval.n_boot=5000

Last stdout line: a JSON summary (report_uri, trials, failures, failed_trials: their count). Exit 0 ok, 1 a trial could not be
re-evaluated, 2 bad arguments, config, eval overrides, bundle or work_dir, a storage that takes no
writes, or no finished sweep on storage (nothing evaluated), 3 storage unreachable (the bundle's or
the sweep's before evaluating, after ``storage_io.retry.attempts`` tries of requests bounded by
``storage_io.request_timeout_s``), or at push time (the report kept locally; the summary's ``report_local``).
"""

from __future__ import annotations

import json
import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tracebridge.export.config import StorageConfig

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the shipped working dir wins

log = logging.getLogger("jobs.eval")


def evaluate_trial(ckpt_uri: str, bundle_uri: str, bundle_id: str, scratch: str, overrides: list[str],
                   storage_io: StorageConfig | None = None) -> dict:
    """Ray task: fetch one checkpoint and the bundle on this node (requests bounded by the sweep's
    ``storage_io``), re-evaluate; the per-item values travel back with the result (the driver writes
    them for the report)."""
    from tracebridge.sweep.reeval import reevaluate
    from tracebridge.sweep.storage import ensure_bundle, get_dir

    work = Path(tempfile.mkdtemp(prefix="tb-reeval-", dir=scratch))
    ckpt = get_dir(ckpt_uri, work / "ckpt", storage_io)
    bundle, _ = ensure_bundle(bundle_uri, Path(scratch) / "bundles", bundle_id, storage_io)
    res = reevaluate(ckpt, bundle, overrides, work / "eval")
    res["eval_items"] = json.loads(Path(res.pop("eval_items_path")).read_text())
    return res


def main(config: str, sweep_overrides: list[str], eval_overrides: list[str]) -> int:
    """Re-evaluate every finished trial of the sweep; returns the exit code."""
    import ray

    from tracebridge.config import ConfigError
    from tracebridge.export.storage import StorageError, StorageUnreachable
    from tracebridge.schema.canonical import sha256_json
    from tracebridge.sweep import grid
    from tracebridge.sweep.config import load_sweep_config
    from tracebridge.sweep.jobcli import job_error
    from tracebridge.sweep.publish import (
        REPORT_NOT_PUSHED,
        STORAGE_UNREACHABLE,
        init_ray,
        publish_into,
        storage_problem,
    )
    from tracebridge.sweep.reeval import check_eval_overrides, final_checkpoints
    from tracebridge.sweep.storage import ensure_bundle, join
    from tracebridge.sweep.tune_run import error_fields
    from tracebridge.train.data import BundleError

    t0 = time.time()
    # ---- 1. the sweep (same config + overrides as its jobs/sweep.py run) and the eval changes
    try:
        cfg = load_sweep_config(config, sweep_overrides)
        recipes = grid.resolve_recipes(cfg)
        problems = check_eval_overrides(eval_overrides, recipes)  # on the driver, not in every task
        if problems:
            raise ConfigError(problems, "eval overrides")
    except ConfigError as exc:
        return job_error(log, 2, str(exc))
    scratch = Path(cfg.work_dir) if cfg.work_dir else Path(tempfile.gettempdir()) / "tracebridge"
    try:
        scratch.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # work_dir under a file, read-only: one error line, not a traceback
        return job_error(log, 2, f"work_dir={scratch}: {exc}")
    try:
        bundle_dir, manifest = ensure_bundle(cfg.bundle, scratch / "bundles", cfg.bundle_id or None, cfg.storage_io)
    except (BundleError, StorageError, OSError, ValueError) as exc:
        return job_error(log, STORAGE_UNREACHABLE if isinstance(exc, StorageUnreachable) else 2,
                         f"bundle {cfg.bundle}: {exc}")
    try:
        sid = grid.resolve_sweep_id(cfg, recipes, manifest["bundle_id"])
    except ConfigError as exc:  # a pinned sweep_id this config never had
        return job_error(log, 2, str(exc))
    problem = storage_problem(cfg)  # the new report goes there
    if problem:
        return job_error(log, problem[1], problem[0], sid)

    # ---- 2. the finished trials' checkpoints on storage (under the id an earlier version gave this config
    # when the sweep ran before an upgrade changed it: grid.sweep_ids)
    ckpts = {}
    try:
        for cand in [sid] if cfg.sweep_id else grid.sweep_ids(cfg, recipes, manifest["bundle_id"]):
            if ckpts := final_checkpoints(join(cfg.storage, cand), cfg.storage_io):
                sid = cand
                break
    except StorageError as exc:  # unreachable after the tries, or no credentials
        return job_error(log, STORAGE_UNREACHABLE if isinstance(exc, StorageUnreachable) else 2, str(exc), sid)
    if not ckpts:
        return job_error(log, 2, f"no finished trials of sweep {sid} under {join(cfg.storage, sid)}", sid)
    log.info("re-evaluating %d trials of %s with %s", len(ckpts), sid, eval_overrides)

    # ---- 3. one task per trial, placed like the trials were
    init_ray(scratch / sid)
    task = ray.remote(num_cpus=cfg.resources.cpu, num_gpus=cfg.resources.gpu)(evaluate_trial)
    refs = {tid: task.remote(uri, cfg.bundle, manifest["bundle_id"], str(scratch), eval_overrides, cfg.storage_io)
            for tid, uri in ckpts.items()}
    results, failed = [], []
    out = scratch / sid / "reeval"
    for tid, ref in refs.items():
        try:
            res = ray.get(ref)
        except Exception as exc:  # noqa: BLE001 - one bad checkpoint must not hide the others
            why = error_fields(None, exc, "")  # the task's own exception, not Ray's wrapper and its colours
            first = (why["error_message"].splitlines() or [""])[0]
            failed.append({"trial_id": tid, **why, "error": f"{why['error_type']}: {first}"})
            continue
        items = out / tid / "eval_items.json"
        items.parent.mkdir(parents=True, exist_ok=True)
        items.write_text(json.dumps(res.pop("eval_items"), default=str))
        results.append({**res, "eval_items_path": str(items)})
    from tracebridge.sweep.shared import fan_out, roles_without_pairs, share_trials

    # a trial the sweep trained once for several grid cells (shared.share_trials) is each cell's again
    members = share_trials(recipes, grid.expand_grid(cfg), roles_without_pairs(bundle_dir))[1]
    results, failed = fan_out(results, failed, members)

    # ---- 4. report under a name of its own
    name = f"{sid}-eval-{sha256_json(sorted(eval_overrides))[:8]}"
    summary = {"sweep_id": sid, "trials": len(results), "failures": failed, "failed_trials": len(failed),
               "wall_s": round(time.time() - t0, 2)}
    # pushed even when every re-evaluation failed: the report then says why each did
    pushed = publish_into(summary, results, cfg, name, manifest["bundle_id"], recipes, time.time() - t0,
                          out / "report", eval_overrides=eval_overrides)  # its intervals: with eval.n_boot/ci given
    print(json.dumps(summary, default=str), flush=True)
    if not pushed:
        return REPORT_NOT_PUSHED
    return 0 if results and not failed else 1


if __name__ == "__main__":
    from tracebridge.sweep.jobcli import job_args

    args = job_args(__doc__)
    cut = args.index("--") if "--" in args else len(args)
    sys.exit(main(args[0], args[1:cut], args[cut + 1:]))
