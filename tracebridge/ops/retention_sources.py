"""What retention (``tracebridge.ops.retention``) reads beyond the daily cycle's folders: the pins
(the promotion history, read under its lock; other ops configs; phase-2 runs) and the weekly and
phase-2 runs whose regenerable folders it removes. The rules:

* ``weekly.bundles_dir/weekly-<stamp>/`` (the week's bundle, pushed to ``weekly.storage_uri`` and
  re-exportable) and ``.weekly-<stamp>/`` (the staged run links) of weekly runs older than the newest
  ``shadow.retention.keep_weekly`` go. ``weekly.artifacts_dir/<stamp>/`` (the manifest) always stays.
* ``phase2.out_dir/.work-<stamp>/`` (trained models, rebuilt by ``--from-manifest``) of phase-2 runs
  older than the newest ``shadow.retention.keep_phase2`` go. ``phase2.out_dir/<stamp>/`` (report,
  manifest) always stays.
* A run whose ``.running.lock`` a live process holds is running: its folders stay, whatever its age.
* The bundle a running or kept phase-2 run reads (its ``.work-<stamp>/uses.json``, written when it
  starts, or its report manifest's ``bundle``) is pinned, so a bundle given by ``phase2.bundle`` in
  phase2.yaml alone or by ``--bundle`` survives a prune configured from shadow.yaml. A kept run whose
  bundle cannot be read from either holds back every bundle (a problem in the report).
* The promotion history is read under promotion.state_dir's lock (``policy_lock``), held by the
  prune until its removal is done: a promote or rollback never has its candidate removed under it.
* ``shadow.retention.pin_configs``: ops configs whose ``phase2.bundle``, canary policy ids and
  ``shadow.retention.pin`` are pinned as if set in the prune's own config.

Only folders named exactly so (``<stamp>`` is ``YYYYMMDDTHHMMSSZ`` with an optional ``-N``, never
symlinks) are candidates; anything else in those folders is left alone.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from tracebridge.ops.agreement import disagreements
from tracebridge.ops.artifacts import MANIFEST, TS_FORMAT, parse_stamp
from tracebridge.ops.config import OpsConfig
from tracebridge.ops.locks import describe_flock_holders
from tracebridge.ops.promotion import LOCK, PolicyState, active_record, read_history

POLICY_LOCK_TIMEOUT_S = 60.0  # a promote or rollback holds the policy lock for milliseconds
STAMP = re.compile(r"^\d{8}T\d{6}Z(-\d+)?$")
RUN_LOCK = ".running.lock"  # held by a running weekly run (.weekly-<stamp>/) or phase-2 run (.work-<stamp>/)
USES = "uses.json"  # in a phase-2 trial folder: the bundle the run reads
WORK_PREFIX, WEEKLY_PREFIX, STAGE_PREFIX = ".work-", "weekly-", ".weekly-"
KINDS = ((STAGE_PREFIX, "weekly staging"), (WORK_PREFIX, "phase-2 trials"), (WEEKLY_PREFIX, "weekly bundle"))


class PinsUnreadable(RuntimeError):
    """A config listed in ``shadow.retention.pin_configs`` cannot be read."""


@dataclass
class Run:
    """One weekly or phase-2 run as found on disk: its removable folders and what it reads."""

    stamp: str
    folders: list[Path]
    lock: Path
    bundles: list[str] | None = field(default_factory=list)  # phase 2: bundle paths; None = unknown

    @property
    def running(self) -> bool:
        """Whether a live process holds the run's lock (a missing lock file: not running)."""
        if not self.lock.is_file():
            return False
        lock = FileLock(str(self.lock), timeout=0)
        try:
            lock.acquire()
        except (Timeout, OSError):  # cannot tell (no permission): treat it as running
            return True
        lock.release()
        return False


def entries(folder: Path) -> list[Path]:
    """Sub-folders (never symlinks) of ``folder``, by name."""
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.is_symlink()) if folder.is_dir() else []


def _order(stamp: str) -> tuple[Any, int]:
    suffix = stamp.partition("-")[2]
    return parse_stamp(stamp), int(suffix or 0)


def _stamped(folder: Path, prefix: str) -> dict[str, Path]:
    """``{stamp: path}`` of the sub-folders named ``<prefix><stamp>``."""
    return {p.name[len(prefix):]: p for p in entries(folder)
            if p.name.startswith(prefix) and STAMP.match(p.name[len(prefix):])}


def weekly_runs(bundles_dir: str | Path) -> list[Run]:
    """Weekly runs with a bundle or staging folder in ``bundles_dir``, oldest first."""
    root = Path(bundles_dir)
    bundles, stages = _stamped(root, WEEKLY_PREFIX), _stamped(root, STAGE_PREFIX)
    return [Run(s, [p for p in (bundles.get(s), stages.get(s)) if p], root / f"{STAGE_PREFIX}{s}" / RUN_LOCK)
            for s in sorted(set(bundles) | set(stages), key=_order)]


def _json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def phase2_runs(out_dir: str | Path) -> list[Run]:
    """Phase-2 runs in ``out_dir`` (a trial folder, or a report with a phase-2 manifest), oldest first,
    with the bundle each reads (None when neither ``uses.json`` nor the manifest says)."""
    root = Path(out_dir)
    works = _stamped(root, WORK_PREFIX)
    reports = {p.name: _json(p / MANIFEST) for p in entries(root) if STAMP.match(p.name)}
    out = []
    for s in sorted(set(works) | {s for s, m in reports.items() if m.get("kind") == "phase2-ablation"}, key=_order):
        uses, man = _json(root / f"{WORK_PREFIX}{s}" / USES), reports.get(s, {})
        found = [v for v in (uses.get("bundle"), uses.get("bundle_path"), man.get("bundle")) if isinstance(v, str) and v]
        out.append(Run(s, [works[s]] if s in works else [], root / f"{WORK_PREFIX}{s}" / RUN_LOCK, found or None))
    return out


def kept(runs: list[Run], keep: int) -> list[Run]:
    """The newest ``keep`` runs and every running one."""
    return [r for i, r in enumerate(runs) if i >= len(runs) - keep or r.running]


def phase2_pins(runs: list[Run]) -> tuple[list[tuple[str, str]], list[str]]:
    """``(bundle, who)`` pins of the given (kept) phase-2 runs, and the stamps whose bundle is unknown."""
    pins = [(b, f"phase-2 run {r.stamp}") for r in runs for b in r.bundles or []]
    return pins, [r.stamp for r in runs if r.bundles is None]


def old_items(runs: list[Run], keep: int, what: str, pinned: Callable[[Path], bool]) -> list[tuple[str, str, str, str]]:
    """``(path, kind, reason, stamp)`` of the folders of runs older than the newest ``keep``, not
    running; a folder (or, for a weekly bundle, a bundle inside it) a pin names stays."""
    keep_ids = {r.stamp for r in kept(runs, keep)}
    out = []
    for r in runs:
        if r.stamp in keep_ids:
            continue
        for p in r.folders:
            inner = entries(p) if p.name.startswith(WEEKLY_PREFIX) else []  # the bundle(s) export wrote in it
            if [q for q in (p, *inner) if pinned(q)]:  # every one is checked, so the report lists each pin
                continue
            kind = next(k for x, k in KINDS if p.name.startswith(x))
            out.append((str(p), kind, f"{what} older than the newest {keep}", r.stamp))
    return out


def config_pins(paths: list[str], own: OpsConfig | None = None, own_name: str = "this config"
                ) -> list[tuple[str, str]]:
    """``(pin, who)`` of every ``phase2.bundle``, canary policy id and ``shadow.retention.pin`` of the configs.

    Args:
        own: the prune's config; a listed config that names a folder of ``agreement.SHARED``
            (promotion.state_dir, phase2.out_dir, weekly.bundles_dir, shadow.work_dir, the feedback
            files) another place than it does is an error.
        own_name: how the message names ``own`` (its file).

    Raises:
        PinsUnreadable: a config cannot be read (missing, bad YAML, invalid), or names another folder.
    """
    from tracebridge.config import ConfigError, load_config

    out: list[tuple[str, str]] = []
    for path in paths:
        try:
            c = load_config(OpsConfig, path, [])
        except (ConfigError, OSError, ValueError) as exc:
            why = " ".join(line.strip() for line in str(exc).splitlines())  # the problems, not just their count
            raise PinsUnreadable(f"shadow.retention.pin_configs: {path}: {why}") from exc
        problems = disagreements(own, own_name, path) if own is not None else []
        if problems:
            raise PinsUnreadable("shadow.retention.pin_configs: " + "; ".join(problems))
        out += [(c.phase2.bundle, f"phase2.bundle of {path}")] if c.phase2.bundle else []
        out += [(c.canary.candidate_policy, f"canary.candidate_policy of {path}"),
                (c.canary.baseline_policy, f"canary.baseline_policy of {path}")]
        out += [(s, f"shadow.retention.pin of {path}") for s in c.shadow.retention.pin]
    return out


def policy_pins(state_dir: str | Path) -> list[str]:
    """Every policy id and gate-report path in the promotion history and ``active.json``.

    Raises:
        PromotionError: the history or ``active.json`` cannot be read (then nothing a policy could name is removed).
    """
    st = PolicyState(Path(state_dir))
    records = read_history(st)
    active = active_record(st)  # damaged (a folder, truncated): the policy it names is unknown, so nothing is removed
    out: list[str] = []
    for rec in [*records, *([active] if active else [])]:
        stack = rec.get("stack") if isinstance(rec.get("stack"), list) else []
        out += [v for v in (rec.get("active_policy"), rec.get("previous_policy"), rec.get("report_path"), *stack)
                if isinstance(v, str) and v]
    return out


@contextmanager
def policy_lock(cfg: OpsConfig) -> Iterator[str | None]:
    """Hold promotion.state_dir's lock (the one every promote and rollback holds) for the block; yield
    None, or why it could not be taken in ``POLICY_LOCK_TIMEOUT_S`` (then ``plan_prune`` removes nothing a
    policy could name). No state folder: no history to read, and none is created."""
    st = PolicyState(Path(cfg.promotion.state_dir), lock_timeout_s=POLICY_LOCK_TIMEOUT_S)
    if not st.root.is_dir():  # missing (nothing to pin) or a file (read_history reports it)
        yield None
        return
    lock = st.lock()
    try:
        lock.acquire()
    except Timeout:
        who = describe_flock_holders(st.root / LOCK)  # read from /proc/locks: the lock keeps no holder note
        yield (f"{st.root / LOCK}: a promote or rollback held the policy lock for {POLICY_LOCK_TIMEOUT_S:g} s"
               + (f" (held by {who})" if who else ""))
        return
    try:
        yield None
    finally:
        lock.release()


def dated_ahead(what: str, ids: list[str], now: dt.datetime, removed: str, where: str) -> str | None:
    """A problem naming the ``what`` (cycles, weekly or phase-2 runs) of ``ids`` dated after ``now``,
    or None. They are ordered by the stamps in their ids: after the clock was set back, those would
    count as the newest and the really newest ones would be pruned in their place."""
    ahead = [i for i in ids if (parse_stamp(i) or now) > now]
    if not ahead:
        return None
    return (f"{what} {', '.join(ahead)} are dated after now ({now.strftime(TS_FORMAT)}): the clock was set back "
            f"since they ran (or was ahead then), so which {what.removesuffix('(s)')}s are the newest cannot be told "
            f"from their ids; no {removed} is removed until the clock passes them or they are moved out of {where}")


def run_items(what: str, runs: list[Run], keep: int, where: str, pinned: Callable[[Path], bool],
              problems: list[str]) -> list[tuple[str, str, str, str]]:
    """The folders of ``runs`` (weekly or phase-2, in the folder ``where`` names) older than the newest
    ``keep`` (``old_items``); none while one of them is dated after the clock (a problem, added to
    ``problems``, names it). The clock, not a running cycle's stamp: a run may start during a cycle."""
    ahead = dated_ahead(f"{what}(s)", [r.stamp for r in runs], dt.datetime.now(dt.UTC), f"{what}'s folder", where)
    if ahead:
        problems.append(ahead)
        return []
    return old_items(runs, keep, what, pinned)
