"""Sweep job: fetch and verify the bundle, run the role × variant × ablation × seed grid on Ray
Tune (retries, checkpoints on storage, resume of an interrupted run of the same sweep), aggregate,
write the report and push it to ``<storage>/reports/<sweep id>``.

Run directly (connects to ``RAY_ADDRESS``, else starts an in-process Ray):
    python jobs/sweep.py configs/sweep/smoke.yaml bundle=tests/data/train_views storage=/tmp/tb-storage

Submit (what ``tracebridge submit`` does; the Ray token in ``RAY_AUTH_TOKEN``, ``RAY_AUTH_MODE=token``):
    ray job submit --address http://127.0.0.1:8265 --working-dir . -- \
        python jobs/sweep.py configs/sweep/demo.yaml bundle=$PWD/demo_out/bundles storage=$PWD/storage

The last stdout line is a JSON summary (sweep_id, report_uri, trials, failures, failed_trials: their count; grid: the cells, trained: the
trials that trained, fewer when cells shared one, shared: each shared trial's cells). Exit codes: 0 all
trials finished and the report was pushed, 1 some or all trials failed (the report pushed: the finished
trials' results and each failed trial's error type, message and config),
2 bad arguments, config, bundle or work_dir, or a storage that takes no writes (nothing trained),
3 storage unreachable: the bundle's or the sweep's before training, after ``storage_io.retry.attempts``
or ``push.attempts`` tries of requests bounded by ``storage_io.request_timeout_s`` (nothing trained), or at
push time after ``push.attempts`` tries (the report is kept locally; the error line and the summary's
``report_local`` give the path).
"""

from __future__ import annotations

import json
import logging
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the shipped working dir wins

log = logging.getLogger("jobs.sweep")


def main(config: str, overrides: list[str]) -> int:
    """Run one sweep end to end; returns the exit code."""
    from tracebridge.config import ConfigError
    from tracebridge.export.storage import StorageError, StorageUnreachable
    from tracebridge.sweep import grid
    from tracebridge.sweep.jobcli import job_error
    from tracebridge.sweep.publish import (
        REPORT_NOT_PUSHED,
        STORAGE_UNREACHABLE,
        init_ray,
        publish_into,
        record_sweep,
        storage_problem,
    )
    from tracebridge.sweep.shared import roles_without_pairs
    from tracebridge.sweep.storage import ensure_bundle
    from tracebridge.sweep.trainable import TrialContext
    from tracebridge.sweep.tune_run import attempts, run_sweep
    from tracebridge.train.data import BundleError

    t0 = time.time()
    # ---- 1. resolve and validate the config (every problem at once, before any worker starts)
    try:
        cfg, recipes, specs = grid.load_checked(config, overrides)
    except ConfigError as exc:
        return job_error(log, 2, str(exc))
    log.info("grid: %d trials (%s × %s × %d ablation cells × seeds %s)", len(specs), cfg.roles, cfg.variants,
             len(grid.ablation_cells(cfg)), cfg.seeds)

    # ---- 2. fetch and verify the bundle; name the sweep; check scratch and storage take writes
    scratch = Path(cfg.work_dir) if cfg.work_dir else Path(tempfile.gettempdir()) / "tracebridge"
    try:
        bundle_dir, manifest = ensure_bundle(cfg.bundle, scratch / "bundles", cfg.bundle_id or None, cfg.storage_io)
    except (BundleError, StorageError, OSError, ValueError) as exc:
        return job_error(log, STORAGE_UNREACHABLE if isinstance(exc, StorageUnreachable) else 2,
                         f"bundle {cfg.bundle}: {exc}")
    try:
        sid = grid.resolve_sweep_id(cfg, recipes, manifest["bundle_id"])
    except ConfigError as exc:  # a pinned sweep_id this config never had
        return job_error(log, 2, str(exc))
    work_root = scratch / sid
    try:
        work_root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # work_dir under a file, read-only: one error line, not a traceback
        return job_error(log, 2, f"work_dir={scratch}: {exc}")
    problem = storage_problem(cfg)
    if problem:
        return job_error(log, problem[1], problem[0], sid)
    log.info("sweep %s: bundle %s (%s)", sid, manifest["bundle_id"], bundle_dir)
    record_sweep(cfg, sid, manifest["bundle_id"], recipes)  # what a later --resume of another config compares

    # ---- 3. run (or resume) the grid on Ray Tune
    resources = init_ray(work_root)
    log.info("cluster resources: %s", {k: v for k, v in resources.items() if k in ("CPU", "GPU", "memory")})
    ctx = TrialContext(sweep_id=sid, bundle_uri=cfg.bundle, bundle_id=manifest["bundle_id"],
                       work_root=str(work_root), recipes=recipes, keep_models=cfg.keep_models, storage=cfg.storage,
                       workers=cfg.resources.workers, cpu=cfg.resources.cpu, gpu=cfg.resources.gpu,
                       max_failures=cfg.max_failures, distributed=cfg.resources.distributed,
                       storage_io=cfg.storage_io)
    try:
        out = run_sweep(cfg, ctx, specs, roles_without_pairs(bundle_dir))
    except StorageError as exc:  # Tune's look-up of an earlier run of this sweep, bounded by storage_io
        return job_error(log, STORAGE_UNREACHABLE if isinstance(exc, StorageUnreachable) else 2,
                         f"storage={cfg.storage}: {exc}", sid)

    # ---- 4. report: write, push
    summary = {"sweep_id": sid, "bundle_id": manifest["bundle_id"], "trials": len(out["trials"]),
               "grid": len(specs), "trained": out["trained"], "shared": out["shared"],
               "failures": out["failures"], "failed_trials": len(out["failures"]), "wall_s": round(time.time() - t0, 2),
               "tune_wall_s": round(out["wall_s"], 2),
               "attempts": {k: sum(e["event"] == "start" for e in v) for k, v in attempts(work_root).items()}}
    # pushed even when every trial failed: the report then lists each failure (type, message, the trial's config)
    failed = [{**f, "config": grid.trial_config(recipes, f)} for f in out["failures"]]
    pushed = publish_into(summary, out["trials"], cfg, sid, manifest["bundle_id"], recipes, out["wall_s"],
                          work_root / "report", failed)
    for f in out["failures"]:
        log.error("trial %s: %s", f["trial_id"], f["error"])
    print(json.dumps(summary, default=str), flush=True)
    if not pushed:
        return REPORT_NOT_PUSHED
    return 0 if not out["failures"] and out["trials"] else 1


if __name__ == "__main__":
    from tracebridge.sweep.jobcli import job_args

    args = job_args(__doc__)
    sys.exit(main(args[0], args[1:]))
