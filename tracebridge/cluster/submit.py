"""Submitting sweeps: plan (load and check the sweep config, check the bundle against its manifest,
name the sweep), open the cluster (start or reuse the local head, or connect to a remote one), submit
``jobs/sweep.py`` as a Ray job whose ``submission_id`` is ``<sweep id>-a<attempt>``, and pull the
report back, verifying its manifest hashes.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tracebridge.cluster.client import (
    ClusterError,
    connect,
    entrypoint,
    read_token,
    runtime_env,
    submit,
)
from tracebridge.cluster.config import ClusterConfig, cluster_from_spec
from tracebridge.cluster.head import HeadInfo, running_head, start_head, stop_head
from tracebridge.cluster.report_pull import (  # noqa: F401 - moved there; callers import them from here too
    REPORT_FILES,
    UNSTAMPED,
    pull_report,
    report_mismatch,
)
from tracebridge.config import ConfigError
from tracebridge.export.config import StorageConfig

log = logging.getLogger(__name__)


@dataclass
class Target:
    """A cluster we talk to (and, for a local head we started, own)."""

    cfg: ClusterConfig
    address: str
    client: Any
    head: HeadInfo | None = None


@dataclass
class SweepPlan:
    """Everything known about a sweep before it is submitted."""

    config_path: str
    overrides: list[str]
    sweep_id: str
    bundle_id: str
    config_hash: str
    report_uri: str
    trials: int
    specs: list[dict[str, Any]] = field(default_factory=list)
    cfg: Any = None
    candidates: list[str] = field(default_factory=list)  # sweep_id, then the ids earlier versions gave it
    identity: dict[str, Any] = field(default_factory=dict)  # {"sweep", "recipes"}: what --resume compares
    # the sweeps of this bundle on storage, listed once (``resume.stored_once``) and reused by the plan and --resume
    stored: dict[str, dict[str, Any] | None] | None = field(default=None, repr=False)
    # the trials the job trains (``shared.trained_trials``: cells that train the same model train once); ``trials`` is
    # the grid's cells. None: not counted (a plan built without it), taken as ``trials``
    trained: int | None = None

    def pin(self, sid: str) -> None:
        """Submit as the sweep ``sid`` (one of ``candidates``: an earlier version's id of this config): the
        job runs under it (``sweep_id=`` override) and its report is pulled from there."""
        from tracebridge.sweep.storage import join

        if sid != self.sweep_id:
            self.sweep_id, self.report_uri = sid, join(self.cfg.storage, "reports", sid)
            self.overrides = [*self.overrides, f"sweep_id={sid}"]

    def expect(self, submission_id: str) -> dict[str, str]:
        """What the report ``submission_id`` (an attempt of this plan) pushed must say in its manifest
        (``pull_report``'s ``expect``)."""
        return {"sweep_id": self.sweep_id, "bundle_id": self.bundle_id, "submission_id": submission_id}

    def metadata(self, attempt: int) -> dict[str, str]:
        """Job metadata (strings only, no secrets): what `list`, `pull` and `--resume` read back."""
        return {"tracebridge": "sweep", "sweep_id": self.sweep_id, "bundle_id": self.bundle_id,
                "config_hash": self.config_hash, "attempt": str(attempt), "report_uri": self.report_uri,
                "config": self.config_path, "trials": str(self.trials),
                "trained_trials": str(self.trained_trials)}

    @property
    def trained_trials(self) -> int:
        """The trials the job trains (``trained``; ``trials`` when not counted)."""
        return self.trials if self.trained is None else self.trained


def open_cluster(cfg: ClusterConfig, start: bool = True) -> Target:
    """Connect to the cluster of ``cfg``; for ``kind: local`` start the head (or reuse a running one).

    Raises:
        ClusterError: no head running (``start=False``), a local head that cannot start here
            (``head.HeadSetupError``), or a cluster that refuses the token.
        ClusterUnreachable: the cluster did not answer, or a local head failed to start for a
            reason a later try may not meet (``head.HeadStartFailed``).
    """
    head = None
    if cfg.kind == "local":
        head = start_head(cfg) if start else running_head(cfg)
        if head is None:
            raise ClusterError(f"no local Ray head is running (none recorded under state_dir={cfg.state_dir}; start "
                               "one with `tracebridge submit ... --keep`, or pass --cluster for a remote one)")
        address, token = head.address, read_token(cfg, head.token_file)
    else:
        address, token = cfg.address, read_token(cfg)
        if not token:
            log.warning("no Ray token found (token_env=%s, token_file=%r); the cluster will refuse us if "
                        "it has token auth on", cfg.token_env, cfg.token_file)
    try:
        return Target(cfg, address, connect(address, token, cfg.request_timeout_s), head)
    except ClusterError:
        if head is not None and head.started:
            stop_head(head)
        raise


def close_cluster(target: Target, keep: bool) -> None:
    """Stop the local head if this process started it, unless ``keep``."""
    if target.head is not None and target.head.started and not keep:
        stop_head(target.head)


def resolve_cluster(spec: str | None, sweep_cluster: str, overrides: list[str] | tuple[str, ...] = ()) -> ClusterConfig:
    """The cluster to use: ``spec`` (``--cluster``) when given, else the sweep's own ``cluster``,
    with ``key=value`` ``overrides`` of its keys (``--cluster-set``).

    Raises:
        tracebridge.config.ConfigError: unknown spec, invalid cluster YAML or a bad override.
    """
    return cluster_from_spec(spec if spec is not None else sweep_cluster, overrides)


def check_bundle(uri: str, storage_io: StorageConfig | None = None) -> str:
    """The id of the bundle at ``uri``, checked on the driver before any head starts (STYLE rule 6).

    A local bundle has every file hashed (streamed) against its manifest, so a changed file is
    refused here, not by the job after the cluster is up; a remote one has only its manifest read
    and parsed (the job hashes the files as it fetches them; downloading them here would double
    the transfer), each request bounded by ``storage_io`` (timeout, retries).

    Raises:
        OSError: no manifest there.
        ValueError: a file that does not match its manifest (names it), or a manifest that does not parse.
        tracebridge.export.storage.StorageError: the storage finds no credentials or cannot be reached.
    """
    from tracebridge.export.bundle import MANIFEST, parse_manifest, verify_bundle
    from tracebridge.export.storage import resolve_bundle_dir
    from tracebridge.sweep.storage import is_local, join, local_path, read_bundle_manifest

    if is_local(uri):
        return verify_bundle(resolve_bundle_dir(local_path(uri))).bundle_id
    man = read_bundle_manifest(uri, storage_io)
    return parse_manifest(man, join(uri, MANIFEST)).bundle_id


def storage_preflight(cfg: Any, probe: bool) -> tuple[str, int] | None:
    """Why the job could not write to the sweep's ``storage``, found on the driver before any head
    starts, with the exit code (2: fix the config, 3: try again later); None when nothing is known
    against it. A protocol fsspec does not know is a typo wherever the job runs. With ``probe`` (a
    local head: the job runs on this machine, in this environment) a local folder must be creatable
    and writable, and an object store takes the job's own write probe (credentials, bucket, endpoint);
    a remote cluster may hold credentials this host lacks, so its job alone probes them."""
    from fsspec.registry import known_implementations, registry

    from tracebridge.sweep.publish import storage_problem
    from tracebridge.sweep.storage import is_local, local_path

    if not is_local(cfg.storage):
        proto = cfg.storage.split("://", 1)[0]
        if proto not in known_implementations and proto not in registry:
            why = (f"storage={cfg.storage}: unknown protocol '{proto}://' "
                   "(use s3://bucket/prefix, gs://bucket/prefix or a local folder)")
            return why, 2
        return storage_problem(cfg) if probe else None
    path = local_path(cfg.storage)
    for p in (path, *path.parents) if probe else ():
        if p.exists():
            if not p.is_dir():
                return f"storage={cfg.storage}: {p} is a file, not a folder", 2
            if not os.access(p, os.W_OK | os.X_OK):
                return f"storage={cfg.storage}: {p} is not writable by this user", 2
            break
    return None


def plan_sweep(config_path: Path, overrides: list[str], cluster: ClusterConfig, working_dir: Path) -> SweepPlan:
    """Load and check the sweep, read its bundle's manifest and compute the ids.

    Local paths (bundle, storage, work_dir) are made absolute and passed on as overrides, so the
    job (which runs in a copy of the working dir) writes where ``pull`` looks; so is the checked
    ``bundle_id``, so the job trains only the bundle checked here. A local head's plan is pinned to the id
    an earlier version gave this config when only that one is stored (``resume.pin_stored``).

    Raises:
        ConfigError: every problem of the sweep, its recipes and its grid; a config outside the
            working dir; a bundle without a readable manifest, or a local one whose files do not
            match it (``check_bundle``).
        tracebridge.export.storage.StorageUnreachable: the sweep has no problem but its bundle's storage
            could not be reached after ``storage_io.retry.attempts`` tries, or (a local head) its own storage
            after ``push.attempts`` tries (``storage_preflight``; a later try may work).
    """
    from tracebridge.cluster.resume import pin_stored
    from tracebridge.export.storage import StorageError, StorageUnreachable
    from tracebridge.sweep import grid
    from tracebridge.sweep.config import load_sweep_config
    from tracebridge.sweep.shared import trained_trials
    from tracebridge.sweep.storage import is_local, join

    try:
        rel = Path(config_path).resolve().relative_to(working_dir.resolve()).as_posix()
    except ValueError:
        raise ConfigError([f"{config_path}: must be inside the working dir {working_dir} (it ships with the job)"])
    cfg = load_sweep_config(str(config_path), overrides)
    # the job runs in a copy of the working dir: hand it the absolute local paths, in place of the overrides
    # that gave them (the entrypoint `status` and `list --all` show then names each path once)
    paths = {k: getattr(cfg, k) for k in ("bundle", "storage", "work_dir") if getattr(cfg, k) and is_local(getattr(cfg, k))}
    ov = [*(o for o in overrides if o.split("=", 1)[0].strip() not in paths), *(f"{k}={v}" for k, v in paths.items())]
    if cluster.kind == "remote" and is_local(cfg.storage):
        log.warning("storage=%s is local; a remote cluster must share that filesystem (else use s3:// or gs://)",
                    cfg.storage)
    recipes = grid.resolve_recipes(cfg)
    specs = grid.expand_grid(cfg)
    problems = grid.check_trials(cfg, recipes, specs)
    try:
        bundle_id = check_bundle(cfg.bundle, cfg.storage_io)
    except (OSError, ValueError, StorageError) as exc:  # StorageError: no credentials, unreachable
        if isinstance(exc, StorageUnreachable) and not problems:
            raise StorageUnreachable(f"bundle: {exc}") from exc
        problems.append(f"bundle={cfg.bundle}: {exc}")
        bundle_id = ""
    if cfg.bundle_id and bundle_id and cfg.bundle_id != bundle_id:
        problems.append(f"bundle_id={cfg.bundle_id}: the bundle at {cfg.bundle} is {bundle_id}")
    found = storage_preflight(cfg, probe=cluster.kind == "local" and not problems)
    if found and found[1] == 2:
        problems.append(found[0])
    elif found:  # the sweep is fine, its storage did not answer: try again later (exit 3)
        raise StorageUnreachable(found[0])
    if problems:
        raise ConfigError(problems, str(config_path))
    sid = grid.resolve_sweep_id(cfg, recipes, bundle_id)
    # the job refuses any other bundle at that URI (a moved LATEST, a re-export into the folder): it would
    # train what was not submitted and push its report where this plan does not look
    ov.append(f"bundle_id='{bundle_id}'")
    plan = SweepPlan(rel, ov, sid, bundle_id, grid.config_digest(cfg, recipes), join(cfg.storage, "reports", sid),
                     len(specs), specs, cfg, grid.sweep_ids(cfg, recipes, bundle_id),
                     {"sweep": grid.identity_fields(cfg), "recipes": recipes}, trained=trained_trials(recipes, specs))
    if cluster.kind == "local":  # a remote cluster's storage may not be readable here: only --resume looks
        pin_stored(plan)
    return plan


def next_attempt(jobs: list[dict[str, Any]], sweep_id: str) -> tuple[int, dict[str, Any] | None]:
    """The attempt to submit for ``--resume``, from the cluster's ``jobs`` (``client.list_jobs``): the running
    attempt (returned as the second item) or one past the last finished one."""
    from tracebridge.cluster.client import TERMINAL

    mine = [j for j in jobs if j["sweep_id"] == sweep_id]
    live = [j for j in mine if j["status"] not in TERMINAL]
    if live:  # attempts are integers (``list_jobs``); a job whose metadata holds none counts as 0
        return live[-1]["attempt"] if isinstance(live[-1]["attempt"], int) else 1, live[-1]
    return max((j["attempt"] for j in mine if isinstance(j["attempt"], int)), default=0) + 1, None


def submit_sweep(target: Target, plan: SweepPlan, attempt: int, working_dir: Path) -> dict[str, Any]:
    """Submit ``jobs/sweep.py`` for ``plan``; returns the submission (``created`` is False when the
    same attempt was already submitted: nothing new started)."""
    from tracebridge.sweep.grid import submission_id

    sub_id = submission_id(plan.sweep_id, attempt)
    entry = entrypoint(target.cfg, "jobs/sweep.py", [plan.config_path, *plan.overrides])
    created = submit(target.client, entry, runtime_env(target.cfg, working_dir), sub_id, plan.metadata(attempt),
                     target.cfg)
    log.info("%s %s on %s", "submitted" if created else "already submitted", sub_id, target.address)
    return {"submission_id": sub_id, "created": created, "sweep_id": plan.sweep_id, "bundle_id": plan.bundle_id,
            "config_hash": plan.config_hash, "report_uri": plan.report_uri, "attempt": attempt,
            "trials": plan.trials, "trained_trials": plan.trained_trials, "address": target.address, "entrypoint": entry}


def never_started_report(target: Target, info: dict[str, Any]) -> dict[str, Any]:
    """Why a job ended (or was stopped) before its driver started: ``{"message", "requested",
    "cluster_resources"}``, the message giving what its driver asked for next to what the cluster has, the
    likely causes and what to do."""
    from tracebridge.cluster.client import cluster_resources, cluster_status, driver_request

    cfg = target.cfg
    asked, have = driver_request(cfg), cluster_resources(cluster_status(target.client))
    short = [k for k, v in asked.items() if have and have.get(k, {}).get("total", 0.0) < v]
    setup = ", ".join(x for x in (f"pip {list(cfg.pip)}" if cfg.pip else "", f"image {cfg.image}" if cfg.image
                                  else "") if x) or "working_dir upload"
    stopped = (f"{info['stopped_because']}; its stop is requested and ends it as soon as Ray places its driver, "
               "so it will not train unattended (Ray lists it PENDING until then, or fails it after "
               "RAY_JOB_START_TIMEOUT_SECONDS)"
               if info.get("stopped_because") else f"Ray ended it {info['status']}")
    parts = [
        f"job {info['submission_id']} never started: its driver stayed PENDING; {stopped}",
        (f"its driver asked for {asked or 'no reserved resources'} (cluster keys entrypoint_num_cpus, "
         "entrypoint_num_gpus, entrypoint_resources)"),
        "the cluster has " + (", ".join(f"{k} {v['total']:g} ({v['free']:g} free)" for k, v in sorted(have.items()))
                              or "resources the dashboard did not report"),
        f"no node offers enough {', '.join(short)}" if short else "",
        ("likely causes: no node has the resources the driver asks for (a GPU or custom resource the cluster "
         f"lacks, or one an autoscaler has not added yet), or its runtime_env ({setup}) is still being set up"),
        f"Ray says: {info.get('message') or '-'}",
        ("fix the cluster or its entrypoint_* keys (or raise pending_timeout_s) and submit again with --resume "
         "(the next attempt)"),
    ]
    return {"message": "; ".join(x for x in parts if x), "requested": asked, "cluster_resources": have}
