"""Train-one-trial job, for debugging a sweep: pick one cell of the sweep's grid (by trial id,
default the first) and run it in this process with the same code the Tune trials run
(bundle fetch and verify, the variant's resolved recipe, ``run_trial``), logging every loss and
checkpoint, without Tune around it.

Run directly:
    python jobs/train_role.py configs/sweep/smoke.yaml verifier-optimized-s0 bundle=tests/data/train_views
Submit (on a GPU node: add --entrypoint-num-gpus 1):
    ray job submit --address http://127.0.0.1:8265 --working-dir . -- \
        python jobs/train_role.py configs/sweep/demo.yaml worker-optimized-s0 bundle=$PWD/demo_out/bundles

Arguments: CONFIG, an optional trial id (no ``=``; an unknown id prints the grid's ids), then
``key=value`` sweep overrides. The last stdout line
is the trial's result as JSON (metrics, checkpoint_dir, trial_dir). Exit 0 ok, 1 the trial's rows cannot
train at its config (``TrialInputError``: the error line names the fix), 2 bad arguments,
config, bundle or work_dir, or an unknown trial id, 3 the bundle's storage unreachable (after
``storage_io.retry.attempts`` tries of requests bounded by ``storage_io.request_timeout_s``).
"""

from __future__ import annotations

import json
import logging
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the shipped working dir wins

log = logging.getLogger("jobs.train_role")


def main(config: str, trial: str | None, overrides: list[str]) -> int:
    """Run one trial of the sweep's grid; returns the exit code."""
    from tracebridge.config import ConfigError
    from tracebridge.export.storage import StorageError, StorageUnreachable
    from tracebridge.sweep import grid
    from tracebridge.sweep.jobcli import job_error
    from tracebridge.sweep.publish import STORAGE_UNREACHABLE
    from tracebridge.sweep.storage import ensure_bundle
    from tracebridge.sweep.trainable import TrialContext, run_one
    from tracebridge.train.common import TrialInputError
    from tracebridge.train.data import BundleError

    # ---- 1. config and the chosen grid cell
    try:
        cfg, recipes, specs = grid.load_checked(config, overrides)
    except ConfigError as exc:
        return job_error(log, 2, str(exc))
    ids = [s["trial_id"] for s in specs]
    if trial not in (None, *ids):
        return job_error(log, 2, f"trial {trial!r} is not in the grid; choose one of:\n  " + "\n  ".join(ids))
    spec = specs[ids.index(trial)] if trial else specs[0]

    # ---- 2. bundle
    scratch = Path(cfg.work_dir) if cfg.work_dir else Path(tempfile.gettempdir()) / "tracebridge"
    try:
        _, manifest = ensure_bundle(cfg.bundle, scratch / "bundles", cfg.bundle_id or None, cfg.storage_io)
    except (BundleError, StorageError, OSError, ValueError) as exc:
        return job_error(log, STORAGE_UNREACHABLE if isinstance(exc, StorageUnreachable) else 2,
                         f"bundle {cfg.bundle}: {exc}")
    try:
        sid = grid.resolve_sweep_id(cfg, recipes, manifest["bundle_id"])
    except ConfigError as exc:  # a pinned sweep_id this config never had
        return job_error(log, 2, str(exc))

    # ---- 3. the trial, with the Tune reporter swapped for a logger
    work_root = scratch / f"{sid}-debug"
    try:
        work_root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # work_dir under a file, read-only: one error line, not a traceback
        return job_error(log, 2, f"work_dir={scratch}: {exc}")
    ctx = TrialContext(sweep_id=sid, bundle_uri=cfg.bundle, bundle_id=manifest["bundle_id"],
                       work_root=str(work_root), recipes=recipes, keep_models=False,
                       storage_io=cfg.storage_io)

    def report(metrics: dict, checkpoint: object = None) -> None:
        log.info("%s%s", {k: v for k, v in metrics.items() if not isinstance(v, float) or "/" not in k},
                 " + checkpoint" if checkpoint is not None else "")

    class _Dir:  # stands in for tune.Checkpoint: the packed folder is only logged here
        @staticmethod
        def from_directory(path: str) -> str:
            return path

    log.info("trial %s of sweep %s", spec["trial_id"], sid)
    try:
        result = run_one(spec, ctx, report, _Dir, None)
    except (ConfigError, BundleError) as exc:  # found by the trial before it trains: a traceback and exit 1 before
        return job_error(log, 2, f"trial {spec['trial_id']}: {exc}", sid)
    except TrialInputError as exc:  # its rows cannot train at this config: the trial failed (a traceback before)
        return job_error(log, 1, f"trial {spec['trial_id']}: {type(exc).__name__}: {exc}", sid)
    print(json.dumps({k: v for k, v in result.items() if k != "loss_curve"}, default=str), flush=True)
    return 0


if __name__ == "__main__":
    from tracebridge.sweep.jobcli import job_args

    args = job_args(__doc__)
    trial_arg = args[1] if len(args) > 1 and "=" not in args[1] else None
    sys.exit(main(args[0], trial_arg, args[2 if trial_arg else 1:]))
