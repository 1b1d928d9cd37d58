"""Which sweep ``tracebridge submit --resume`` continues: the sweep of this config and bundle that the
cluster's jobs or the storage know, under its id or an id an earlier version gave the same config
(``grid.sweep_ids``). When there is none but the storage or the cluster holds other sweeps of the same
bundle, ``--resume`` refuses, naming each one and the config keys that differ, rather than start a new
sweep the user did not ask for.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from tracebridge.config import ConfigError

log = logging.getLogger(__name__)

MAX_LINES = 12  # differing keys shown per stored sweep


def stored_sweeps(cfg: Any, bundle_id: str) -> dict[str, dict[str, Any] | None]:
    """The sweeps of ``bundle_id`` on ``cfg.storage`` (a Tune run, a report folder or a config record
    named ``<name>-<hash>-<bundle id 12>``): id → its identity (``{"sweep", "recipes"}``) from the config
    its job recorded (``publish.record_sweep``) or else its report's manifest; None when neither is there
    (a sweep an older version started that pushed no report).

    Raises:
        tracebridge.export.storage.StorageError: the storage could not be listed.
        OSError: a local storage path that is not a folder.
    """
    from tracebridge.sweep.storage import join, list_names

    tail = f"-{bundle_id[:12]}"
    records = {n[:-5] for n in list_names(join(cfg.storage, "sweeps"), cfg.storage_io) if n.endswith(f"{tail}.json")}
    reports = {n for n in list_names(join(cfg.storage, "reports"), cfg.storage_io) if n.endswith(tail)}
    runs = {n for n in list_names(cfg.storage, cfg.storage_io) if n.endswith(tail)}
    out: dict[str, dict[str, Any] | None] = {}
    for sid in sorted(records | reports | runs):
        where = [join(cfg.storage, "sweeps", f"{sid}.json")] if sid in records else []
        where += [join(cfg.storage, "reports", sid, "manifest.json")] if sid in reports else []
        out[sid] = next((ident for uri in where if (ident := _identity_at(uri, cfg)) is not None), None)
    return out


def _identity_at(uri: str, cfg: Any) -> dict[str, Any] | None:
    """The identity in a config record or a report manifest (its ``config``); None when unreadable."""
    from tracebridge.export.storage import StorageError
    from tracebridge.sweep.config import NON_IDENTITY
    from tracebridge.sweep.storage import read_text

    try:
        doc = json.loads(read_text(uri, cfg.storage_io))
        conf = doc.get("config", doc) if uri.endswith("manifest.json") else doc
        return {"sweep": {k: v for k, v in conf["sweep"].items() if k not in NON_IDENTITY}, "recipes": conf["recipes"]}
    except (FileNotFoundError, ValueError, KeyError, TypeError, AttributeError, StorageError):
        return None


def stored_once(plan: Any) -> dict[str, dict[str, Any] | None]:
    """``stored_sweeps`` of ``plan``, listed on the first call and kept on the plan (``plan.stored``): a
    ``submit --resume`` on a local head asks twice (``pin_stored`` while planning, ``choose_sweep`` once the
    head is up) and each listing reads three folders, each tried ``retry.attempts`` times when the storage
    does not answer. A storage that cannot be listed is logged once and counts as holding no sweep."""
    from tracebridge.export.storage import StorageError

    if plan.stored is None:
        try:
            plan.stored = stored_sweeps(plan.cfg, plan.bundle_id)
        except (StorageError, OSError) as exc:  # OSError: a file where a folder should be
            log.warning("could not list the sweeps stored at %s (to find this sweep under an earlier id): %s",
                        plan.cfg.storage, exc)
            plan.stored = {}
    return plan.stored


def pin_stored(plan: Any) -> None:
    """Submit ``plan`` under an earlier version's id of its config (``plan.candidates``) when storage holds
    that sweep and none under its own id: a submit continues its sweep's stored Tune run, as it did before
    an upgrade changed the id. A pinned ``sweep_id`` is kept; a storage that cannot be listed is logged."""
    if plan.cfg.sweep_id or len(plan.candidates) < 2:
        return
    stored = stored_once(plan)
    found = next((sid for sid in plan.candidates if sid in stored), None)
    if found and found != plan.sweep_id:
        log.info("sweep %s is stored as %s (an earlier version's id of this config): continuing it",
                 plan.sweep_id, found)
        plan.pin(found)


def choose_sweep(plan: Any, job_sweeps: set[str]) -> str:
    """The id ``--resume`` continues: the first of ``plan.candidates`` (this config's id, then those
    earlier versions gave it) that a job on the cluster (``job_sweeps``) or the storage knows; the plan's
    own id when neither knows any sweep of this bundle (a first attempt). The storage is listed once per
    plan (``stored_once``); one that cannot be listed is logged and only the cluster's jobs are asked.

    Raises:
        ConfigError: no sweep of this config is known but others of the same bundle are: each is named
            with the keys that differ (stored value, value now), so the user can set them or submit
            without ``--resume``.
    """
    stored = stored_once(plan)
    for sid in plan.candidates:
        if sid in job_sweeps or sid in stored:
            return sid
    tail = f"-{plan.bundle_id[:12]}"
    others = {**{s: None for s in job_sweeps if s and s.endswith(tail)}, **stored}
    if not others:
        return plan.sweep_id
    raise ConfigError([(f"--resume: no sweep {plan.sweep_id} (nor an earlier version's id of this config) on the "
                       f"cluster or at {plan.cfg.storage}, but {len(others)} other sweep(s) of bundle {tail[1:]}")]
                      + [mismatch(plan, sid, ident) for sid, ident in sorted(others.items())]
                      + [("to continue one of these, set its stored values (recipe keys as overrides.KEY=VALUE, "
                         f"sweep keys as KEY=VALUE); to start sweep {plan.sweep_id}, submit without --resume")])


def mismatch(plan: Any, sid: str, ident: dict[str, Any] | None) -> str:
    """One line on a stored sweep of the bundle that is not this config's: the keys that differ."""
    from tracebridge.sweep.identity import differences

    head = f"stored sweep {sid} of the same bundle"
    if ident is None:
        return f"{head}: its config is not recorded (it pushed no report yet), so the keys that differ are unknown"
    diff = differences(ident, plan.identity)
    if not diff:
        return (f"{head}: has the same config under an id this version does not reproduce; "
                "submit without --resume to start it anew")
    more = f"; and {len(diff) - MAX_LINES} more" if len(diff) > MAX_LINES else ""
    return f"{head} differs in {'; '.join(diff[:MAX_LINES])}{more}"


def succeeded_job(jobs: list[dict[str, Any]], sweep_id: str) -> dict[str, Any] | None:
    """The job of ``sweep_id``'s latest attempt when it SUCCEEDED and no attempt of it runs, else None: a
    ``--resume`` of it would train nothing new (every trial finished, its report pushed), so none is sent."""
    from tracebridge.cluster.client import TERMINAL

    mine = [j for j in jobs if j["sweep_id"] == sweep_id]
    if not mine or any(j["status"] not in TERMINAL for j in mine):
        return None
    last = max(mine, key=lambda j: (j["attempt"] if isinstance(j["attempt"], int) else 0, j.get("start_time") or 0))
    return last if last["status"] == "SUCCEEDED" else None
