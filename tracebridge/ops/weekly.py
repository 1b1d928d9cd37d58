"""Weekly retrain/evaluate (phase 4): last week's runs → bundle → storage → sweep in a GPU window.

The plan is a list of ``tracebridge`` commands (the same ones an operator would type), built by a
pure function from ``WeeklyConfig`` and then run in order; a failed command stops the plan (each
step needs the previous one's output). Every run writes ``artifacts/weekly/<UTC timestamp>/
manifest.json`` with the plan, each command's exit code and the tail of its output.

Last week's runs are staged as symlinks in ``<bundles_dir>/.weekly-<stamp>/traces`` (runs whose
``session.json`` ``started_at`` is inside the window, and those the last good week left out as still
running: ``window``), so the export sees exactly that week; the window starts where the last good week
ended (a late timer, failed weeks: no run falls between two bundles; an early one, a clock set back: no run is
in two), at most ``MAX_WINDOWS`` back, and the manifest says so (``window_start``, ``after_manifest``); the stamp
is the run's UTC second, with ``-N`` when an earlier run of that second left its folders (``free_stamp``). A run
within ``weekly.min_interval_h`` (half the window) of the last good week's end, either side, is that window's again
(a timer and a cron, a manual rerun, a DST hour repeated, a clock set back): it is skipped (status ``skipped``, no
manifest, nothing staged); and no run a good week staged (``staged_runs``) is staged again. The
bundle goes to ``<bundles_dir>/weekly-<stamp>/``. Both are regenerable: retention keeps those of the
newest ``shadow.retention.keep_weekly`` runs, and never a run's that holds ``.weekly-<stamp>/.running.lock``
(held while it runs); the manifests in ``artifacts_dir`` stay.

Two weekly runs never overlap: a run holds ``<bundles_dir>/.weekly.lock`` (``WEEKLY_LOCK``) from
staging to its manifest. A second one (cron firing while the last still holds its GPU window)
raises ``WeeklyLocked`` naming the lock file and the holder's pid (exit 3 in the CLI) and starts
nothing; a run that finds the note of a holder that died holding the lock takes it over, says so
in a warning and in its manifest's ``lock`` block (``tracebridge.ops.locks``).

The export joins the Telegram reaction labels (``feedback.*`` overrides built by the shadow
cycle's ``feedback_overrides``, chunk policy included) when ``weekly.feedback_ledger`` exists;
the manifest's ``feedback`` block says whether it did, and why not.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from filelock import FileLock

from tracebridge.capture.reader import iter_runs
from tracebridge.ops.artifacts import (
    check_folders,
    check_input_files,
    cycle_stamp,
    new_bundle_dir,
    write_manifest,
)
from tracebridge.ops.config import WeeklyConfig
from tracebridge.ops.groups import run_in_group
from tracebridge.ops.locks import note_child, run_lock
from tracebridge.ops.retention_sources import RUN_LOCK, STAGE_PREFIX, WEEKLY_PREFIX
from tracebridge.ops.shadow_steps import feedback_overrides
from tracebridge.schema.canonical import format_ts, utc_now

MAX_WINDOWS = 4  # a window widened to the last good week's end reaches back at most this many windows
MAX_CARRIED = 10_000  # incomplete runs a manifest names for the next week
WEEKLY_LOCK = ".weekly.lock"  # in weekly.bundles_dir: held by a weekly run from staging to its manifest


class WeeklyLocked(RuntimeError):
    """Another weekly run holds the lock."""


@dataclass
class Step:
    name: str
    argv: list[str]


def stage_runs(traces: Path, cutoff: str, stage: Path, carried: frozenset[str] = frozenset(),
               left: list[str] | None = None, until: str = "~", exported: frozenset[str] = frozenset(),
               staged: list[str] | None = None) -> dict[str, int]:
    """Symlink into ``stage`` the runs that started in [``cutoff``, ``until``) (ISO UTC times) and those
    of ``carried`` (left out of the last good week as incomplete) that are complete now; return counts.
    The ids of runs still incomplete go to ``left`` (the next week's ``carried``); a run that started at
    or after ``until`` (a clock ahead) is the next week's (``later``); one an earlier good week staged
    (``exported``: a window reaching back over it after a clock was set back) is not staged again
    (``exported_before``). The ids staged go to ``staged``."""
    stage.mkdir(parents=True, exist_ok=True)
    counts = {"read": 0, "staged": 0, "older": 0, "incomplete": 0, "carried": 0, "later": 0, "exported_before": 0}
    for run in iter_runs(traces):
        counts["read"] += 1
        try:
            started = run.read_session().get("started_at", "") if run.complete else None
        except (OSError, ValueError):
            started = None
        if not isinstance(started, str):
            counts["incomplete"] += 1
            if left is not None and len(left) < MAX_CARRIED and _written_since(run.path, cutoff):
                left.append(run.run_id)  # still being written: the next week takes it once it is complete
            continue
        if started < cutoff and run.run_id not in carried:
            counts["older"] += 1
            continue
        if started >= until:
            counts["later"] += 1
            continue
        if run.run_id in exported:
            counts["exported_before"] += 1
            continue
        os.symlink(run.path.resolve(), stage / run.run_id)
        counts["staged"] += 1
        if staged is not None:
            staged.append(run.run_id)
        counts["carried"] += started < cutoff
    return counts


def _written_since(run: Path, cutoff: str) -> bool:
    """Whether the run's events file changed at/after ``cutoff`` (a run abandoned long ago is not carried)."""
    try:
        changed = (run / "events.jsonl").stat().st_mtime
    except OSError:
        return False
    return changed >= dt.datetime.fromisoformat(cutoff).timestamp()


def window(cfg: WeeklyConfig, artifacts_dir: Path, now: dt.datetime) -> dict[str, Any]:
    """The week's window: ``since`` is where the last weekly run that finished ok ended (its manifest's
    ``until``; a timer that fired late, weeks that failed: no run falls between two bundles; one that fired
    early, a clock set back: no run is in two bundles), but at most ``MAX_WINDOWS`` windows back; with no such
    run, or one that ended after ``now`` (its clock ahead, or ours set back past its end: starting there would
    leave out for good the runs recorded since), ``weekly.days`` before ``now``. ``window_start`` says which,
    ``after_manifest`` names that manifest; ``carried``: the runs that week left out as incomplete (a session
    running across its end is in this week's bundle)."""
    since, floor = (format_ts(now - dt.timedelta(days=cfg.days * n)) for n in (1, MAX_WINDOWS))
    out: dict[str, Any] = {"since": since, "until": format_ts(now), "carried": [],
                           "window_start": f"weekly.days={cfg.days} before now: no earlier weekly run finished ok"}
    weeks = good_weeks(artifacts_dir)
    prev = max(weeks, key=lambda m: m["until"], default=None)
    if skip := _same_window(weeks, now, cfg):
        out["skip"] = skip
    if prev is not None:
        # before, min(now - days, its end): a week run early or with the clock set back began before the last
        # week's end, and the runs started in between went into both bundles
        out["after"], out["after_manifest"] = prev["until"], prev["manifest"]
        if prev["until"] > out["until"]:  # it ended after now: which runs it held, the clock cannot tell
            out["window_start"] = (f"weekly.days={cfg.days} before now: the last weekly run that finished ok ended "
                                   f"after now, at {prev['until']} ({prev['manifest']}): the clock was set back past "
                                   "its end, or was ahead during it; runs a good week staged are not staged again "
                                   "(starting at its end would leave out, for good, the runs recorded since)")
        else:
            out["since"] = max(prev["until"], floor)
            out["window_start"] = (f"where the last weekly run that finished ok ended ({prev['manifest']})"
                                   if out["since"] == prev["until"] else
                                   f"{MAX_WINDOWS} windows before now: the last weekly run that finished ok ended at "
                                   f"{prev['until']} ({prev['manifest']}), further back")
        out["carried"] = [r for r in prev.get("incomplete_runs") or [] if isinstance(r, str)]
    return out


def good_weeks(artifacts_dir: Path) -> list[dict[str, Any]]:
    """The manifests (with their paths as ``manifest``) of the weekly runs that finished ok and say where their
    window ended (``until``, an ISO UTC time)."""
    out = []
    for path in Path(artifacts_dir).glob("*/manifest.json"):
        try:
            man = orjson.loads(path.read_bytes())
            ok = isinstance(man, dict) and man.get("kind") == "weekly" and man.get("status") == "ok" \
                and isinstance(man.get("until"), str) and dt.datetime.fromisoformat(man["until"]).tzinfo is not None
        except (OSError, orjson.JSONDecodeError, ValueError):  # a hand-edited until is no week's end
            continue
        if ok:
            out.append({**man, "manifest": str(path)})
    return out


def exported_runs(weeks: list[dict[str, Any]], now: dt.datetime, days: int) -> frozenset[str]:
    """The runs the good ``weeks`` staged (their manifests' ``staged_runs``), of those that ended in the last
    ``MAX_WINDOWS`` + 1 windows or after ``now`` (a clock set back since): no window reaches further."""
    floor = format_ts(now - dt.timedelta(days=days * (MAX_WINDOWS + 1)))
    return frozenset(r for man in weeks if man["until"] >= floor and isinstance(man.get("staged_runs"), list)
                     for r in man["staged_runs"] if isinstance(r, str))


def last_good_week(artifacts_dir: Path) -> dict[str, Any] | None:
    """The manifest of the newest weekly run that finished ok and says where its window ended (with its path
    as ``manifest``), or None."""
    return max(good_weeks(artifacts_dir), key=lambda m: m["until"], default=None)


def _same_window(weeks: list[dict[str, Any]], now: dt.datetime, cfg: WeeklyConfig) -> str | None:
    """Why a run now is the same window's as a good week's (its end within ``weekly.min_interval_h`` of now, either
    side: the nearest of them, so a week run with the clock far ahead does not hide the one that just ran), or None."""
    limit = cfg.days * 12.0 if cfg.min_interval_h is None else cfg.min_interval_h
    gaps = [((now - dt.datetime.fromisoformat(m["until"])).total_seconds() / 3600, m) for m in weeks]
    gap_h, man = min(gaps, key=lambda g: abs(g[0]), default=(None, None))
    if gap_h is None or man is None or abs(gap_h) >= limit:
        return None
    return (f"this window's weekly run already finished ok: {man['manifest']} ended its window at {man['until']}, "
            f"{abs(gap_h):.1f} h {'before' if gap_h >= 0 else 'after (the clock was set back)'} now, less than "
            f"weekly.min_interval_h={limit:g}; nothing exported (weekly.min_interval_h=0 runs it anyway)")


def feedback_plan(cfg: WeeklyConfig) -> tuple[list[str], dict[str, Any]]:
    """The export's ``feedback.*`` overrides and the manifest's ``feedback`` block (joined or why not)."""
    if cfg.feedback_ledger is None:
        return [], {"labels": False, "note": "weekly.feedback_ledger=null: export without reaction labels"}
    ov = feedback_overrides(cfg.feedback_ledger, cfg.feedback_mapping, cfg.chunk_registry, cfg.feedback_legacy_bot_id)
    block: dict[str, Any] = {"labels": bool(ov), "ledger": cfg.feedback_ledger}
    if not ov:
        block["note"] = f"no reaction ledger at {cfg.feedback_ledger}: export without reaction labels"
    return ov, block


def plan(cfg: WeeklyConfig, stage: Path, bundle_out: Path, bin_: list[str],
         feedback: list[str] | None = None) -> list[Step]:
    """The commands of one weekly run (pure); ``feedback`` = the export's ``feedback.*`` overrides."""
    export = [*bin_, "export", str(stage), *(feedback or []), "--out", str(bundle_out)]
    if cfg.export_config:
        export += ["--config", cfg.export_config]
    return [
        Step("export", export),
        Step("push", [*bin_, "push", str(bundle_out), cfg.storage_uri]),
        Step("window", [*bin_, "window", cfg.sweep_config, "--cluster", cfg.cluster, "--max-hours",
                        str(cfg.max_hours), "--max-usd", str(cfg.max_usd), f"bundle={cfg.storage_uri}"]),
    ]


def check_paths(cfg: WeeklyConfig, artifacts_dir: Path) -> None:
    """Raise ValueError (``key=path: why``) for a path the run would trip on only after staging, or
    after the GPU window has been paid for (the manifest is written last)."""
    if not Path(cfg.traces).is_dir():
        raise ValueError(f"weekly.traces={cfg.traces}: no such trace root (a folder of runs)")
    # the window reads these after the export and the push (a missing one was found only then)
    check_input_files([("weekly.sweep_config", cfg.sweep_config), ("weekly.cluster", cfg.cluster),
                       ("weekly.export_config", cfg.export_config)])
    check_folders([("weekly.bundles_dir", cfg.bundles_dir), ("weekly.artifacts_dir", artifacts_dir)])


def free_stamp(bundles_dir: Path, now: dt.datetime) -> str:
    """The stamp of a weekly run at ``now``: its UTC second, with ``-N`` when a run of that second (a rerun
    right after a quick failure, a clock set back) left folders there: a run never stages into, nor
    exports over, another run's folders (call it under ``WEEKLY_LOCK``)."""
    base = cycle_stamp(now)
    for i in range(1000):
        stamp = base if i == 0 else f"{base}-{i}"
        if not any((bundles_dir / f"{pre}{stamp}").exists() for pre in (STAGE_PREFIX, WEEKLY_PREFIX)):
            return stamp
    raise ValueError(f"weekly.bundles_dir={bundles_dir}: 1000 weekly runs of {base} already; remove old ones")


def _planned(cfg: WeeklyConfig, artifacts_dir: Path, now: dt.datetime, stamp: str,
             bin_: list[str]) -> tuple[dict[str, Any], list[Step], Path]:
    """The planned manifest, the steps and the staging folder of a run with this stamp."""
    stage = Path(cfg.bundles_dir) / f"{STAGE_PREFIX}{stamp}" / "traces"
    fb, fb_block = feedback_plan(cfg)
    steps = plan(cfg, stage, Path(cfg.bundles_dir) / f"{WEEKLY_PREFIX}{stamp}", bin_, fb)
    man: dict[str, Any] = {"kind": "weekly", "started_at": utc_now(), "window_days": cfg.days,
                           **window(cfg, artifacts_dir, now), "config": cfg.__dict__.copy(),
                           "plan": [" ".join(s.argv) for s in steps], "feedback": fb_block, "steps": {},
                           "status": "planned"}
    return man, steps, stage


def run_weekly(cfg: WeeklyConfig, artifacts_dir: Path, bin_: list[str], now: dt.datetime | None = None,
               dry_run: bool = False) -> dict[str, Any]:
    """Stage, then run the plan; return (and, unless dry-run, write) the weekly manifest.

    Raises:
        ValueError: a path of the config is wrong (``check_paths``; checked before anything runs, and
            by a dry run).
        WeeklyLocked: another weekly run is running (nothing was started nor written).
    """
    now = now or dt.datetime.now(dt.UTC)
    check_paths(cfg, artifacts_dir)  # a dry run too: it is the preflight of the Sunday run
    bundles = Path(cfg.bundles_dir)
    if dry_run:
        return _planned(cfg, artifacts_dir, now, free_stamp(bundles, now), bin_)[0]
    bundles.mkdir(parents=True, exist_ok=True)
    with run_lock(bundles / WEEKLY_LOCK, "another weekly run is running", cfg.lock_timeout_s, WeeklyLocked) as stale:
        man, steps, stage = _planned(cfg, artifacts_dir, now, free_stamp(bundles, now), bin_)
        if stale is not None:
            man["lock"] = {"took_over_from": stale}
        if man.get("skip"):  # checked under the lock: a run that waited for the last one sees its manifest
            return {**man, "status": "skipped", "plan": [], "manifest": None}
        stage.parent.mkdir()  # a free stamp: never another run's folder
        with FileLock(str(stage.parent / RUN_LOCK)):  # retention leaves a running week's folders alone
            return _run(cfg, artifacts_dir, now, stage, steps, man)


def _run_step(s: Step, lock: Path) -> dict[str, Any]:
    """Run one command of the plan; its manifest entry (a command that cannot start is a failed step,
    not a traceback that leaves the week without a manifest). ``lock``: the run's lock, whose holder note lists
    the command (a run SIGKILLed while its window runs left it holding the cluster: the next run stops it)."""
    try:  # its own process group: stopped with the run when it is interrupted
        res = run_in_group(s.argv, on_start=lambda pid, argv: note_child(lock, pid, argv))
    except OSError as exc:
        return {"status": "failed", "exit_code": None, "reason": f"cannot start {s.argv[0]}: {exc}"}
    return {"status": "ok" if res.returncode == 0 else "failed", "exit_code": res.returncode,
            "output_tail": (res.stdout + res.stderr)[-2000:]}


def _run(cfg: WeeklyConfig, artifacts_dir: Path, now: dt.datetime, stage: Path, steps: list[Step],
         man: dict[str, Any]) -> dict[str, Any]:
    """Stage the week's runs, run the plan and write the manifest (``run_weekly`` holds the lock)."""
    man["incomplete_runs"], man["staged_runs"] = [], []
    man["staged"] = stage_runs(Path(cfg.traces), man["since"], stage, frozenset(man["carried"]), man["incomplete_runs"],
                               man["until"], exported_runs(good_weeks(artifacts_dir), now, cfg.days),
                               man["staged_runs"])
    status = "ok"
    if man["staged"]["staged"] == 0:
        status = "failed"
        before = man["staged"]["exported_before"]
        man["steps"]["stage"] = {"status": "failed", "reason": f"no runs since {man['since']} ({man['window_start']})"
                                 + (f"; {before} run(s) of the window were exported by an earlier week" if before else "")}
    for s in steps:
        if status != "ok":
            man["steps"][s.name] = {"status": "skipped", "reason": "needs the previous step"}
            continue
        man["steps"][s.name] = _run_step(s, Path(cfg.bundles_dir) / WEEKLY_LOCK)
        status = man["steps"][s.name]["status"]
    man.update(status=status, finished_at=utc_now())
    bundle = new_bundle_dir(artifacts_dir, now)
    write_manifest(bundle, man)
    man["manifest"] = str(bundle / "manifest.json")
    return man
