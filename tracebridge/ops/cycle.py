"""The step-table runner of the daily shadow cycle: lock, steps with declared dependencies, manifest.

A step is a function ``fn(ctx) -> outputs`` in ``STEPS`` (``tracebridge.ops.shadow_steps``) with
the names of the steps it needs. Steps start in table order as soon as what they need has ended
``ok``, up to ``shadow.parallel_steps`` at a time. A step whose dependency did not end
``ok`` is marked ``skipped`` with ``reason="needs X"`` and is not run; a step named in
``shadow.skip`` is ``skipped`` with ``reason="skipped by config"``. A step that raises is
``failed`` with the error; later steps that do not depend on it still run. The cycle's
``status`` is ``ok`` when no step failed: a step the config turned off (``shadow.skip``,
``shadow.optimize.mode=off``, ``shadow.runtime_hook=false``), and the steps that need it, are
``skipped`` and do not fail the cycle; the review says what they left unmeasured.

A file lock in the work dir keeps two cycles from overlapping (``CycleLocked``, exit code 3 in
the CLI): the second one writes nothing, and its error names the lock file and the holder's pid.
A cycle that finds the note of a holder that died holding the lock takes it over, says so in a
warning and in its manifest's ``lock`` block (``tracebridge.ops.locks``).

After the steps, still under the lock and before the manifest, the cycle prunes older cycles per
``shadow.retention`` (``tracebridge.ops.retention``); what it removed or could not remove is the
manifest's ``retention`` block and never changes the cycle's ``status``.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tracebridge
from tracebridge.config import config_hash, to_dict
from tracebridge.ops.artifacts import KIND, check_folders, git_sha, new_bundle_dir, write_manifest
from tracebridge.ops.config import OpsConfig
from tracebridge.ops.locks import add_to_holder, run_lock
from tracebridge.schema.canonical import utc_now

log = logging.getLogger(__name__)
OK, FAILED, SKIPPED = "ok", "failed", "skipped"
SKIPPED_BY_CONFIG = "skipped by config"  # a skipped step's reason when shadow.skip (or its mode key) turned it off
LOCK = ".shadow-cycle.lock"  # in shadow.work_dir; also taken by `tracebridge shadow-prune`
WORK_SUBDIRS = ("traces", "replay", "bundles", "optimize", "export-cache")  # what the steps write in work_dir
PENDING, RUNNING = "pending", "running"


class StepFailed(RuntimeError):
    """Raised by a step that ran and found a failure; ``outputs`` keeps its evidence."""

    def __init__(self, reason: str, outputs: dict[str, Any] | None = None) -> None:
        super().__init__(reason)
        self.outputs = outputs or {}


class CycleLocked(RuntimeError):
    """Another shadow cycle holds the lock."""


@dataclass
class Step:
    name: str
    fn: Callable[[Ctx], dict[str, Any]]
    needs: tuple[str, ...] = ()
    doc: str = ""


@dataclass
class Ctx:
    """What a step sees: config, its folders, the time, earlier steps' outputs, the CLI to call."""

    cfg: OpsConfig
    bundle: Path
    work: Path
    now: dt.datetime
    cli: list[str]
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    config_name: str = "this config"  # how messages name cfg: its file (and whether overrides were given)
    # set when the cycle is interrupted (Ctrl-C, SIGTERM): the steps' child processes are stopped
    cancel: threading.Event = field(default_factory=threading.Event)

    @property
    def shadow(self) -> Any:
        """The shadow-cycle section of the config (``cfg.shadow``)."""
        return self.cfg.shadow

    @property
    def traces(self) -> Path:
        """The cycle's trace root, ``<work>/traces``."""
        return self.work / "traces"


def check_setup(cfg: OpsConfig, steps: list[Step]) -> None:
    """Raise ValueError for a setup that would only fail once the cycle holds the lock: a work or
    artifacts path that is a file (or under one), an artifacts_dir inside a folder the steps write in the work dir
    (retention would prune the evidence), a ``shadow.skip`` name that is no step (a typo there
    would silently run the step it meant to skip), or an input path that is not there (``missing_inputs``)."""
    check_folders([("shadow.work_dir", cfg.shadow.work_dir), ("artifacts_dir", cfg.artifacts_dir)])
    work, art = Path(cfg.shadow.work_dir).resolve(), Path(cfg.artifacts_dir).resolve()
    for sub in WORK_SUBDIRS:  # the cycle writes there, and retention prunes bundles/ and optimize/
        if art == work / sub or work / sub in art.parents:
            raise ValueError(f"artifacts_dir={cfg.artifacts_dir}: inside shadow.work_dir/{sub}, which the cycle "
                             "writes and prunes; keep the evidence outside it")
    unknown = sorted(set(cfg.shadow.skip) - {s.name for s in steps})
    if unknown:
        raise ValueError(f"shadow.skip: no step named {', '.join(unknown)}; steps: {', '.join(s.name for s in steps)}")
    if missing := missing_inputs(cfg, {s.name for s in steps} - set(skipped_steps(cfg))):
        raise ValueError("; ".join(missing))


def missing_inputs(cfg: OpsConfig, running: set[str]) -> list[str]:
    """The input paths of the steps in ``running`` that are not there, as ``key=path: no such file or folder``:
    ``shadow.sources`` (import, feedback), the getUpdates dumps (feedback) and ``shadow.chunk_policy_doc``
    (chunk_policy). A mistyped path is the caller's
    mistake: found by the steps, it failed the cycle, which the review counts as a cycle that did not succeed."""
    sh, keys = cfg.shadow, []
    if running & {"import", "feedback"}:
        keys += [(f"shadow.sources[{i}]", p) for i, p in enumerate(sh.sources)]
    if "feedback" in running:
        keys += [(f"shadow.feedback_updates[{i}]", p) for i, p in enumerate(sh.feedback_updates)]
        keys += [(f"shadow.feedback_bots[{i}].updates[{j}]", p) for i, b in enumerate(sh.feedback_bots)
                 for j, p in enumerate(b.updates)]
    if "chunk_policy" in running:  # the step failed on it after the whole cycle ran ("policy not documented")
        keys.append(("shadow.chunk_policy_doc", sh.chunk_policy_doc))
    hint = {"shadow.sources": " (an OpenClaw state folder or transcript; shadow.sources=[] uses the runs already "
                              "in shadow.work_dir/traces)",
            "shadow.chunk_policy_doc": " (the chunk label policy the chunk_policy step checks; a relative path is "
                                       "read from the folder the cycle runs in: run it from the checkout)"}
    return [f"{k}={p}: no such file or folder{hint.get(k.split('[')[0], '')}"
            for k, p in keys if not Path(p).expanduser().exists()]


def check_table(steps: list[Step]) -> None:
    """Raise ValueError when a step needs a step that does not run before it."""
    names = [s.name for s in steps]
    for i, s in enumerate(steps):
        unknown = [n for n in s.needs if n not in names[:i]]
        if unknown:
            raise ValueError(f"step {s.name} needs {unknown}, which do not run before it")


def _run_one(s: Step, ctx: Ctx) -> dict[str, Any]:
    """Run one step; return its status, reason, outputs and duration (never raises)."""
    t0 = time.perf_counter()
    rec: dict[str, Any] = {}
    try:
        out = s.fn(ctx) or {}
        rec.update(outputs=out, status=OK, reason=str(out.get("note") or ""))  # a passed step's caveat, if any
    except StepFailed as exc:
        rec.update(status=FAILED, reason=str(exc), outputs=exc.outputs)
    except Exception as exc:  # noqa: BLE001 - a failed step is recorded, never hidden
        rec.update(status=FAILED, reason=f"{type(exc).__name__}: {exc}", outputs={},
                   traceback=traceback.format_exc(limit=8)[-4000:])
    rec["duration_s"] = round(time.perf_counter() - t0, 3)
    return rec


def run_steps(steps: list[Step], ctx: Ctx, skip: list[str], parallel: int = 1) -> dict[str, dict[str, Any]]:
    """Run the table; return ``{name: {status, needs, reason, duration_s, outputs}}`` in table order.

    Up to ``parallel`` steps whose dependencies are done run at once (threads; the heavy steps are
    child processes); a step starts only after everything it needs has ended ``ok``.
    """
    check_table(steps)
    record = {s.name: {"status": PENDING, "needs": list(s.needs), "reason": "", "duration_s": 0.0,
                       "outputs": {}, "doc": s.doc} for s in steps}
    with ThreadPoolExecutor(max_workers=max(1, parallel), thread_name_prefix="shadow-step") as pool:
        try:
            _schedule(steps, ctx, skip, parallel, record, pool)
        except BaseException:  # interrupted: stop the running steps' children, or the pool waits for them
            ctx.cancel.set()   # and they outlive the cycle and its lock, writing into the next cycle's files
            raise
    return record


def _schedule(steps: list[Step], ctx: Ctx, skip: list[str], parallel: int, record: dict[str, dict[str, Any]],
              pool: ThreadPoolExecutor) -> None:
    """``run_steps``' loop: start each step once its needs ended ``ok`` (at most ``parallel`` at once),
    mark it skipped when one did not, and record each result as it ends."""
    pending: list[Step] = list(steps)
    running: dict[Any, Step] = {}
    while pending or running:
        for s in list(pending):
            rec, states = record[s.name], [record[n]["status"] for n in s.needs]
            if s.name in skip or any(st in (FAILED, SKIPPED) for st in states):
                blocked = [n for n in s.needs if record[n]["status"] != OK]
                rec.update(status=SKIPPED, reason=SKIPPED_BY_CONFIG if s.name in skip
                           else "needs " + ", ".join(blocked))
                pending.remove(s)
            elif all(st == OK for st in states) and len(running) < max(1, parallel):
                rec["status"] = RUNNING
                running[pool.submit(_run_one, s, ctx)] = s
                pending.remove(s)
        if not running:
            continue
        done, _ = wait(running, return_when=FIRST_COMPLETED)
        for fut in done:
            s = running.pop(fut)
            record[s.name].update(fut.result())
            ctx.outputs[s.name] = record[s.name]["outputs"]
            log.info("shadow step %s: %s %s", s.name, record[s.name]["status"], record[s.name]["reason"])


def build_manifest(ctx: Ctx, steps: dict[str, dict[str, Any]], started_at: str) -> dict[str, Any]:
    """The bundle manifest from the step records (see ``tracebridge.ops.artifacts``)."""
    out = {name: rec["outputs"] for name, rec in steps.items()}
    return {
        "kind": KIND, "cycle_id": ctx.bundle.name, "started_at": started_at, "finished_at": utc_now(),
        "status": FAILED if any(r["status"] == FAILED for r in steps.values()) else OK,
        "tracebridge_version": tracebridge.__version__,
        "git_sha": git_sha(), "config": to_dict(ctx.cfg), "config_hash": config_hash(ctx.cfg),
        "inputs": {"sources": list(ctx.shadow.sources), "traces": str(ctx.traces),
                   **out.get("import", {}).get("inputs", {}), **out.get("feedback", {}).get("inputs", {}),
                   **out.get("replay", {}).get("inputs", {})},
        "steps": steps,
        "uplift": out.get("optimize", {}).get("uplift"),
        "integrity": integrity(out),
        "feedback": out.get("feedback", {}).get("feedback"),
        "chunk_policy": out.get("chunk_policy", {}).get("chunk_policy"),
    }


def integrity(out: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Integrity stats the review compares between cycles."""
    v, imp, exp, rep = (out.get(k, {}) for k in ("validate", "import", "export", "replay"))
    checks = [c for c in (imp.get("counts"), exp.get("counts")) if c]
    reconciled = bool(checks) and all(c.get("read") == c.get("accepted", 0) + c.get("quarantined", 0)
                                      for c in checks)
    read = sum(c.get("read", 0) for c in checks)
    quarantined = sum(c.get("quarantined", 0) for c in checks)
    return {
        "runs_total": v.get("runs_total"), "schema_valid_pct": v.get("schema_valid_pct"),
        "lineage_valid_pct": v.get("lineage_valid_pct"), "incomplete_pct": v.get("incomplete_pct"),
        "quarantine_pct": round(100.0 * quarantined / read, 3) if read else 0.0,
        "reconciled": reconciled if checks else None,
        "reconcile_detail": {"import": imp.get("counts"), "export": exp.get("counts")},
        "replay_bundle_id": rep.get("bundle_id"), "replay_stable": rep.get("stable"),
    }


def skipped_steps(cfg: OpsConfig) -> list[str]:
    """Steps the config turns off: ``shadow.skip``, ``optimize.mode=off``, ``runtime_hook=false``."""
    sh = cfg.shadow
    return list(sh.skip) + (["optimize"] if sh.optimize.mode == "off" else []) + \
        ([] if sh.runtime_hook else ["runtime_hook"])


def run_cycle(cfg: OpsConfig, steps: list[Step], cli: list[str], now: dt.datetime | None = None,
              config_name: str = "this config") -> dict[str, Any]:
    """One shadow cycle under the lock; return the manifest (also written to the bundle). ``config_name``
    names ``cfg`` in messages (its file).

    Raises:
        CycleLocked: another cycle is running (nothing is written).
        ValueError: the setup is wrong (``check_setup``; nothing is written).
    """
    # imported here, not at the top: tracebridge.ops.retention imports this module
    from tracebridge.ops.retention import prune_after_cycle

    check_table(steps)
    check_setup(cfg, steps)
    work = Path(cfg.shadow.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    with cycle_lock(cfg, "another shadow cycle is running") as stale:
        now = now or dt.datetime.now(dt.UTC)
        started = utc_now()
        bundle = new_bundle_dir(cfg.artifacts_dir, now)
        add_to_holder(work / LOCK, bundle=str(bundle.resolve()))  # the review tells this running cycle from a crash
        ctx = Ctx(cfg, bundle, work, now, cli, config_name=config_name)
        record = run_steps(steps, ctx, skipped_steps(cfg), cfg.shadow.parallel_steps)
        retention = prune_after_cycle(ctx)
        manifest = {**build_manifest(ctx, record, started), "retention": retention}
        if stale is not None:  # the lock was taken over from a cycle that died holding it
            manifest["lock"] = {"took_over_from": stale}
        write_manifest(bundle, manifest)
        manifest["path"] = str(bundle)
        return manifest


@contextmanager
def cycle_lock(cfg: OpsConfig, busy: str, timeout: float | None = None) -> Iterator[dict[str, Any] | None]:
    """Hold the work dir's cycle lock (waiting ``timeout`` s, default ``shadow.lock_timeout_s``) for the
    block (``tracebridge.ops.locks.run_lock``); yield the note of a dead holder it took over, else None.

    Raises:
        CycleLocked: another holder (a cycle, a prune) kept it; the message names the lock file, the
            holder's pid, and ``busy`` (what to tell the user).
    """
    wait = cfg.shadow.lock_timeout_s if timeout is None else timeout
    with run_lock(Path(cfg.shadow.work_dir) / LOCK, busy, wait, CycleLocked) as stale:
        yield stale
