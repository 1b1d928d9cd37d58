"""The ends of a sweep job: check that storage takes writes and connect the driver to Ray; write the report of the finished trials
(``tracebridge.report.write_report``: results.json, report.html, manifest.json stamped with the
sweep id, the submission id of the job (the attempt) that wrote it, bundle id, resolved config, the nodes the trials ran on, GPU-hours and their cost at
``window.prices``) and push it to ``<storage>/reports/<sweep id>``, retrying
an unreachable storage with backoff and keeping the report locally when it stays unreachable.
"""

from __future__ import annotations

import logging
import os
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

from tracebridge.config import to_dict
from tracebridge.export.storage import StorageError, StorageUnreachable, retry_io
from tracebridge.sweep.config import SweepConfig
from tracebridge.sweep.storage import join, put_dir

log = logging.getLogger(__name__)
REPORT_NOT_PUSHED = 3  # the jobs' exit code when the report stays local
STORAGE_UNREACHABLE = 3  # ... when the bundle's storage or the sweep's could not be reached (a later try may work)


class ReportNotPushed(StorageError):
    """The report was written but storage refused it after every retry; ``local_dir`` holds it."""

    def __init__(self, message: str, local_dir: Path) -> None:
        super().__init__(message)
        self.local_dir = local_dir


def storage_problem(cfg: SweepConfig) -> tuple[str, int] | None:
    """Why the job could not write to ``cfg.storage`` and the job's exit code (``STORAGE_UNREACHABLE``
    when it could not be reached after the tries, else 2); None when a probe file was written and removed
    there. The jobs check it before Ray starts: otherwise an unwritable storage shows only at the
    first checkpoint or at the report push, after the GPUs were spent. Each request is bounded by
    ``cfg.storage_io.request_timeout_s``; transient failures are retried like the push (``cfg.push``).
    A write that failed is followed by one try to remove what it may have written (its answer lost after the
    store took it: each try left a probe there), and a storage that takes the write but refuses the removal (a
    policy without delete: the sweep removes files there too, a report's earlier files, checkpoints Tune no
    longer keeps) is a problem naming the probe left there (it was "cannot write there", the probe unnamed)."""
    from tracebridge.sweep.storage import _fs, is_local, local_path

    probe = join(cfg.storage, f".write-probe-{uuid.uuid4().hex[:12]}")
    what = f"write probe {probe}"

    def write() -> None:
        if is_local(cfg.storage):  # object stores have no folders; a local one is made as Tune would
            local_path(cfg.storage).mkdir(parents=True, exist_ok=True)
        fs, path = _fs(probe, cfg.storage_io)
        fs.pipe_file(path, b"")

    def remove() -> None:
        fs, path = _fs(probe, cfg.storage_io)
        try:
            fs.rm_file(path)
        except FileNotFoundError:  # never written, or removed by an earlier try whose answer was lost
            pass

    try:  # given the URI, a 403 names the operation, the URI and the credentials used
        retry_io(write, what, cfg.push, probe)
    except (StorageError, OSError) as exc:
        if not isinstance(exc, PermissionError) and not isinstance(exc.__cause__, PermissionError):  # 403: none written
            try:  # the store may have taken the write whose answer was lost: one try, bounded as each request
                retry_io(remove, f"removal of the {what}", replace(cfg.push, attempts=1), probe)
            except (StorageError, OSError) as gone:
                log.warning("%s: not removed after the write failed: %s", probe, gone)
        from tracebridge.export.bucket import no_bucket

        missing = isinstance(exc, FileNotFoundError) and no_bucket(cfg.storage, cfg.storage_io)
        return (f"storage={cfg.storage}: cannot write there ({missing or f'{type(exc).__name__}: {exc}'})",
                STORAGE_UNREACHABLE if isinstance(exc, StorageUnreachable) else 2)
    try:
        retry_io(remove, f"removal of the {what}", cfg.push, probe)
    except (StorageError, OSError) as exc:
        why = (f"storage={cfg.storage}: wrote there but cannot remove what it wrote ({type(exc).__name__}: {exc}); "
               f"the sweep removes files there too (a report's earlier files, checkpoints it no longer keeps); "
               f"{probe} is left there: remove it once these credentials may")
        return why, STORAGE_UNREACHABLE if isinstance(exc, StorageUnreachable) else 2
    remove_stale_probes(cfg)
    return None


def remove_stale_probes(cfg: SweepConfig, max_age_s: float | None = None) -> list[str]:
    """Remove the write probes under ``cfg.storage`` older than ``max_age_s`` (default: ``STALE_AFTER_S``, an
    hour; a probe lives for two requests), those of jobs killed between its write and its removal, and return
    their URIs. Housekeeping: a listing or removal that fails is logged, never the job's problem."""
    import time

    from tracebridge.export.leftovers import STALE_AFTER_S
    from tracebridge.sweep.storage import _fs

    max_age_s, gone = STALE_AFTER_S if max_age_s is None else max_age_s, []
    try:
        fs, root = _fs(cfg.storage, cfg.storage_io)
        for entry in fs.ls(root, detail=True):
            name = str(entry["name"]).rstrip("/")
            if entry.get("type") == "file" and name.rsplit("/", 1)[-1].startswith(".write-probe-") \
                    and time.time() - fs.modified(name).timestamp() > max_age_s:
                fs.rm_file(name)
                gone.append(join(cfg.storage, name.rsplit("/", 1)[-1]))
                log.warning("%s: removed the write probe of a job killed before it removed it", gone[-1])
    except Exception as exc:  # noqa: BLE001 - housekeeping: the storage took the probe, the job goes on
        log.info("%s: stale write probes not looked for: %s", cfg.storage, exc)
    return gone


def init_ray(work_root: Path) -> dict[str, float]:
    """Connect to the job's cluster (``RAY_ADDRESS``, set by the Jobs API) or, run directly, start
    an in-process Ray with token auth from a 0600 file in ``work_root`` (never ``~/.ray``).

    Returns:
        The cluster's resources.
    """
    import ray

    if not os.environ.get("RAY_ADDRESS") and "RAY_AUTH_MODE" not in os.environ:
        from tracebridge.cluster.head import ensure_token

        ensure_token(work_root / "auth_token")
        os.environ.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(work_root / "auth_token"))
        from ray._raylet import AuthenticationTokenLoader, Config

        Config.initialize("")  # re-read RAY_AUTH_MODE (Ray caches it at import), as ray.init itself does
        AuthenticationTokenLoader.instance().reset_cache()
    if not ray.is_initialized():
        ray.init(address=os.environ.get("RAY_ADDRESS") or None, include_dashboard=False,
                 log_to_driver=False, configure_logging=False)
    return dict(ray.cluster_resources())


def job_submission_id() -> str | None:
    """The submission id of the Ray job this process is the driver of (``<sweep id>-a<attempt>`` when
    ``tracebridge submit`` sent it), read from the job config the Jobs API hands its driver; None when run
    outside a Ray job (``python jobs/sweep.py ...``)."""
    import json

    try:
        meta = json.loads(os.environ.get("RAY_JOB_CONFIG_JSON_ENV_VAR") or "{}").get("metadata") or {}
    except (ValueError, AttributeError):
        return None
    return meta.get("job_submission_id") or None


def report_config(cfg: SweepConfig, sweep_id: str, bundle_id: str, recipes: dict[str, Any]) -> dict[str, Any]:
    """The resolved config stamped into the report manifest (no secrets: only names of env vars)."""
    return {"sweep_id": sweep_id, "bundle_id": bundle_id, "sweep": to_dict(cfg), "recipes": recipes}


def record_sweep(cfg: SweepConfig, sweep_id: str, bundle_id: str, recipes: dict[str, Any]) -> None:
    """Write the sweep's resolved config (``report_config``) to ``<storage>/sweeps/<sweep id>.json`` before
    it trains, so a later ``submit --resume`` of another config can name the keys that differ even when
    this sweep pushed no report. A failed write is logged: the sweep runs without it."""
    import json

    from tracebridge.sweep.storage import put_text

    uri = join(cfg.storage, "sweeps", f"{sweep_id}.json")
    try:
        put_text(uri, json.dumps(report_config(cfg, sweep_id, bundle_id, recipes), default=str), cfg.storage_io)
    except (StorageError, OSError) as exc:
        log.warning("sweep config not recorded at %s: %s", uri, exc)


def report_intervals(recipes: dict[str, Any], eval_overrides: list[str] | None = None) -> tuple[int, float]:
    """The bootstrap settings (``eval.n_boot``, ``eval.ci``) of a sweep's report: the recipes' (one for every
    trial: ``grid.check_trials`` refuses variants or ablations that differ in them), with a re-evaluation's
    ``eval_overrides`` of them applied (``jobs/eval.py ... -- eval.n_boot=5000``: before, its report computed
    its intervals with the sweep's value, not the one asked for); 1000 and 0.95 where none is set."""
    ev = dict(next(iter(recipes.values()), {}).get("eval", {}))
    for override in eval_overrides or []:  # checked against the recipes already (reeval.check_eval_overrides)
        key, _, value = override.partition("=")
        if key.strip() in ("eval.n_boot", "eval.ci"):
            ev[key.strip().split(".", 1)[1]] = value.strip()
    return int(ev.get("n_boot", 1000)), float(ev.get("ci", 0.95))


def publish_report(trials: list[dict[str, Any]], cfg: SweepConfig, sweep_id: str, bundle_id: str,
                   recipes: dict[str, Any], wall_s: float, local_dir: Path,
                   submission_id: str | None = None, failed: list[dict[str, Any]] | None = None,
                   eval_overrides: list[str] | None = None) -> dict[str, Any]:
    """Write the report into ``local_dir``, its manifest stamped with ``submission_id`` (the job that
    wrote it), its results listing the ``failed`` trials with their reasons and its intervals computed with
    ``report_intervals`` (a re-evaluation's ``eval_overrides`` applied), and push it to storage (each request bounded by ``cfg.storage_io.request_timeout_s``,
    transient failures retried with backoff, ``cfg.push``).

    Returns:
        ``{"report_uri", "local_dir", "manifest"}``.

    Raises:
        ReportNotPushed: storage still unreachable after the last try (the message names the URI,
            the error and ``local_dir``, where the report stays).
    """
    from tracebridge.report import write_report

    n_boot, ci = report_intervals(recipes, eval_overrides)
    manifest = write_report(trials, local_dir, config=report_config(cfg, sweep_id, bundle_id, recipes),
                            wall_s=wall_s, bundle_id=bundle_id, n_boot=n_boot, ci=ci, title=f"TraceBridge sweep {sweep_id}",
                            sweep_id=sweep_id, prices=dict(cfg.window.prices), submission_id=submission_id,
                            failed=failed)
    uri = join(cfg.storage, "reports", sweep_id)
    try:
        put_dir(local_dir, uri, replace(cfg.storage_io, retry=cfg.push), f"push of the report to {uri}")
    except (StorageError, OSError) as exc:
        raise ReportNotPushed(f"{exc}; the report is kept locally at {local_dir}", local_dir) from exc
    log.info("report pushed to %s", uri)
    return {"report_uri": uri, "local_dir": str(local_dir), "manifest": manifest}


def publish_into(summary: dict[str, Any], trials: list[dict[str, Any]], cfg: SweepConfig, name: str,
                 bundle_id: str, recipes: dict[str, Any], wall_s: float, local_dir: Path,
                 failed: list[dict[str, Any]] | None = None, eval_overrides: list[str] | None = None) -> bool:
    """The jobs' report step: ``publish_report`` stamped with this job's submission id (the failed trials
    listed from ``failed``, default ``summary["failures"]``; a sweep whose trials all failed pushes a report
    of its failures too), with its
    outcome added to ``summary`` (``submission_id``; ``report_uri`` and ``winners``, or ``report_local``
    and ``report_error`` when the push failed, logged as an error naming the storage URI, the error and
    the local path).

    Returns:
        Whether the report reached storage.
    """
    summary["submission_id"] = job_submission_id()
    try:
        pub = publish_report(trials, cfg, name, bundle_id, recipes, wall_s, local_dir, summary["submission_id"],
                             summary.get("failures") if failed is None else failed, eval_overrides)
    except ReportNotPushed as exc:
        log.error("report not pushed: %s", exc)
        summary.update(report_local=str(exc.local_dir), report_error=str(exc))
        return False
    summary.update(report_uri=pub["report_uri"], winners=pub["manifest"].get("winners"))
    return True
