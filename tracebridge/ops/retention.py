"""Retention of the daily shadow cycle: which files of older cycles stay; the prune removes the rest.

What a cycle writes (``tracebridge.ops.cycle``, ``shadow_steps``, ``optimize``), and who reads it:

* ``artifacts_dir/<cycle id>/``: the evidence, small (100-200 KB): ``manifest.json`` listing every
  file with its sha256, step logs, ``validate.json``, the export's manifest, report and quarantine,
  the replay manifest, the optimize report, the feedback audit, ``consumers.json``, the chunk-policy
  doc. ``tracebridge review`` reads these and verifies each listed file: never pruned (a crashed
  cycle's folder, without manifest, stays too: it is the review's evidence of the crash).
* ``work_dir/bundles/<bundle id>/``: the export of the whole trace history, a new one each day the
  runs change (GBs on a real host), and ``work_dir/bundles/.hf-cache/``, the datasets cache the
  consumer check builds of it. Only that cycle's consumer and chunk-policy steps read them.
* ``work_dir/optimize/<cycle id>/``: the optimize smoke's trials (model weights, eval items) and
  report, which is copied into the artifacts. Nothing reads it after the cycle, unless a policy
  built from it was promoted.
* ``work_dir/traces``, ``replay/``, ``export-cache/`` and the lock file: shared by all cycles and
  bounded (the trace root itself, the fixed replay set, a run cache that prunes itself): never pruned.

``plan_prune`` lists what may go: export bundles a cycle wrote (its manifest, or a crashed cycle's
copied export manifest, names them; one exported there by hand stays) that none of the newest
``keep_cycles`` finished cycles names, the optimize folders of cycles older than those, the datasets
cache, temp folders of killed exports (``.bundle-*``), and (``remove_crashed``) a crashed cycle's
optimize folder once a newer cycle finished; and, per ``keep_weekly`` / ``keep_phase2``, the weekly
runs' bundles and phase 2's trial folders (``tracebridge.ops.retention_sources``: never their manifests
or reports). Cycle ids are ``<stamp>`` or ``<stamp>-N``; a folder named ``<stamp>-my-copy`` is no cycle's.
A folder whose name (in any case; or a symlink's target) appears in the promotion history (every policy
ever active, the rollback stack, the gate reports), in ``shadow.retention.pin``, the canary's policy
ids, ``phase2.bundle``, the configs of ``shadow.retention.pin_configs``, or is the bundle of a running
or kept phase-2 run, is pinned; when the history or a pin config cannot be read, no bundle, model or
cycle folder is removed. A folder that holds artifacts_dir (or the weekly / phase-2 evidence) or
overlaps a cycle folder, a report, the policy state or a trace root is never removed: it is a problem.
While a cycle is dated after now (the running cycle's stamp, else the clock: the clock was set back since
it ran), no cycle's bundle or optimize folder is removed, as the newest cycles cannot be told by their ids;
the same holds for weekly and phase-2 runs (``retention_sources.run_items``).

Locks: ``prune`` (the CLI) plans under the cycle's lock, which a dry run takes without waiting (a running
cycle: ``CycleLocked``, since its files cannot be told from old ones), and ``prune_after_cycle``
inside the cycle. Both read the promotion history under promotion.state_dir's lock and, still under it,
move every planned folder aside (``retention_remove.detach``, a rename), so a promote or rollback never has
its candidate removed between the read and the removal; the removal itself (``apply_prune``, counting what
could not be removed instead of raising) runs after the locks are let go, so a promote, rollback or cycle
started meanwhile does not wait for it.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tracebridge.ops import retention_sources as rcad
from tracebridge.ops.artifacts import MANIFEST, list_cycles, parse_stamp, read_manifest
from tracebridge.ops.config import OpsConfig
from tracebridge.ops.cycle import Ctx, cycle_lock
from tracebridge.ops.promotion import PromotionError
from tracebridge.ops.retention_remove import apply_prune, detach, leftover_items
from tracebridge.ops.retention_sources import policy_lock, policy_pins

log = logging.getLogger(__name__)
BUNDLE_ID = re.compile(r"^[0-9a-f]{64}$")  # export bundle folders are named by their sha256 id
CYCLE_ID = re.compile(r"^\d{8}T\d{6}Z(-\d+)?$")  # cycle folders (new_bundle_dir); not "<stamp>-my-copy"
CACHE, PARTIAL = ".hf-cache", ".bundle-"
_entries = rcad.entries


@dataclass
class Item:
    """One folder the prune removes (or would remove), why, and what removing it freed."""

    path: str
    kind: str  # export bundle | optimize folder | cache | partial export | interrupted prune | weekly/phase-2 kinds
    reason: str
    cycle_id: str | None = None
    bytes: int = 0
    freed: int = 0
    removed: bool = False
    error: str | None = None


@dataclass
class PruneReport:
    """A prune's plan and outcome: the items, the cycles whose files were kept, pins, problems."""

    dry_run: bool
    keep_cycles: int
    items: list[Item] = field(default_factory=list)
    kept_cycles: list[str] = field(default_factory=list)
    pinned: list[str] = field(default_factory=list)
    pinned_by: dict[str, str] = field(default_factory=dict)  # pinned folder -> the settings that name it
    problems: list[str] = field(default_factory=list)
    moved: dict[str, str] = field(default_factory=dict, repr=False)  # item path -> where detach moved it

    @property
    def failed(self) -> list[Item]:
        """Items that could not be (wholly) removed."""
        return [i for i in self.items if i.error]

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON: items, counts, bytes planned and freed, kept and pinned folders, problems."""
        return {"dry_run": self.dry_run, "keep_cycles": self.keep_cycles, "items": [asdict(i) for i in self.items],
                "removed": sum(i.removed for i in self.items), "failed": len(self.failed),
                "bytes_planned": sum(i.bytes for i in self.items), "bytes_freed": sum(i.freed for i in self.items),
                "kept_cycles": self.kept_cycles, "pinned": self.pinned, "pinned_by": self.pinned_by,
                "problems": self.problems}


@dataclass
class _Cycle:
    cycle_id: str
    path: Path
    finished: bool  # has a manifest.json (ok, failed or damaged); False = crashed or killed
    manifest: dict[str, Any] | None


def _scan(artifacts_dir: str | Path, current: Path | None) -> list[_Cycle]:
    """Cycle folders oldest first; the running cycle (``current``, no manifest yet) counts as finished.
    A folder only named like one (``<stamp>-notes``, a copy) is no cycle."""
    out = []
    for _, path in list_cycles(artifacts_dir):
        if not CYCLE_ID.match(path.name):
            continue
        if current is not None and path.resolve() == current.resolve():
            out.append(_Cycle(path.name, path, True, None))
        else:
            done = (path / MANIFEST).exists()
            out.append(_Cycle(path.name, path, done, read_manifest(path) if done else None))
    return out


def _export_bundle(c: _Cycle) -> str | None:
    """The name of the export bundle a finished cycle's manifest names (None when any level of
    ``steps.export.outputs.bundle_dir`` is missing or not what a cycle writes)."""
    node: Any = c.manifest
    for key in ("steps", "export", "outputs", "bundle_dir"):
        node = node.get(key) if isinstance(node, dict) else None
    return Path(node).name if isinstance(node, str) else None


def _crashed_bundle(c: _Cycle) -> str | None:
    """The bundle a crashed cycle's export wrote: the id in the export manifest the step copied."""
    try:
        bid = json.loads((c.path / "export" / MANIFEST).read_text()).get("bundle_id")
    except (OSError, ValueError, AttributeError):
        return None
    return bid if isinstance(bid, str) and BUNDLE_ID.match(bid) else None


def _cache_items(work: Path) -> list[Item]:
    """The consumer check's datasets cache and temp folders of killed exports (cycle and replay)."""
    out = [Item(str(p), "cache", "datasets cache of the consumer check; rebuilt when needed")
           for p in _entries(work / "bundles") if p.name == CACHE]
    for folder in (work / "bundles", work / "replay" / "bundles"):
        out += [Item(str(p), "partial export", "temp folder of an export that was killed")
                for p in _entries(folder) if p.name.startswith(PARTIAL)]
    return out


def _bundle_items(work: Path, keep: set[str], cycles: list[_Cycle], keep_cycles: int, pinned: Any) -> list[Item]:
    """Export bundles in ``work/bundles`` that a cycle wrote, no kept cycle names and no pin names. A
    bundle no cycle names (exported there by hand; every one when artifacts_dir is not this host's) stays."""
    owner: dict[str, str] = {}  # the newest cycle naming each bundle
    for c in cycles:
        name = _export_bundle(c) if c.finished else _crashed_bundle(c)
        if name:
            owner[name] = c.cycle_id
    out = []
    for p in _entries(work / "bundles"):
        if BUNDLE_ID.match(p.name) and p.name in owner and p.name not in keep and not pinned(p):
            why = f"named by none of the newest {keep_cycles} cycles"
            out.append(Item(str(p), "export bundle", why, owner[p.name]))
    return out


def _cycle_items(work: Path, cycles: list[_Cycle], kept: set[str], rc: Any, pinned: Any) -> list[Item]:
    """The optimize folders of crashed cycles older than the newest finished one, of finished cycles
    that are not kept, and of cycles no artifacts folder names."""
    last = max((i for i, c in enumerate(cycles) if c.finished), default=None)
    if last is None:  # nothing finished yet: nothing is known to be old
        return []
    newest = cycles[last].cycle_id
    by_id = {c.cycle_id: c for c in cycles}
    out = []
    for c in cycles[:last]:  # a crashed cycle's artifacts folder stays: the review lists the crash from it
        opt = work / "optimize" / c.cycle_id
        if c.finished or not rc.remove_crashed or pinned(opt) or not opt.is_dir() or opt.is_symlink():
            continue
        why = f"crashed cycle (no {MANIFEST}) older than the finished cycle {newest}"
        out.append(Item(str(opt), "optimize folder", why, c.cycle_id))
    for p in _entries(work / "optimize"):
        c = by_id.get(p.name)
        if c is not None and c.finished and p.name not in kept and not pinned(p):
            out.append(Item(str(p), "optimize folder", f"cycle older than the newest {rc.keep_cycles}", p.name))
        elif c is None and CYCLE_ID.match(p.name) and _older(p.name, newest) and not pinned(p):
            out.append(Item(str(p), "optimize folder", f"no cycle folder {p.name} in the artifacts; older than "
                            f"the finished cycle {newest}", p.name))
    return out


def _older(name: str, than: str) -> bool:
    """Whether ``name`` is a cycle stamp earlier than the cycle stamp ``than``."""
    a, b = parse_stamp(name), parse_stamp(than)
    return a is not None and b is not None and a < b


def plan_prune(cfg: OpsConfig, current: Path | None = None, current_bundle: str | None = None,
               dry_run: bool = True, policy_busy: str | None = None, config_name: str = "this config") -> PruneReport:
    """What ``shadow.retention`` removes now (nothing is removed here; callers hold the locks, ``prune``).

    Args:
        current: the running cycle's artifacts folder (it has no manifest yet, and is kept).
        current_bundle: the name of the export bundle the running cycle wrote (kept).
        policy_busy: why the policy lock could not be taken (then nothing a policy could name is removed).
        config_name: how a problem names ``cfg`` (its file, and whether overrides were given).
    """
    rep = PruneReport(dry_run=dry_run, keep_cycles=cfg.shadow.retention.keep_cycles)
    _plan(cfg, rep, _scan(cfg.artifacts_dir, current), current, current_bundle, policy_busy, config_name)
    work = Path(cfg.shadow.work_dir)
    rep.items += [Item(*t) for t in leftover_items([work / "bundles", work / "replay" / "bundles", work / "optimize",
                                                    Path(cfg.phase2.out_dir), Path(cfg.weekly.bundles_dir)])]
    rep.items = _apart(cfg, rep)
    return rep


def _plan(cfg: OpsConfig, rep: PruneReport, cycles: list[_Cycle], current: Path | None,
          current_bundle: str | None, policy_busy: str | None, config_name: str) -> None:
    """Fill ``rep`` per the module's rules (``plan_prune``)."""
    rc, work = cfg.shadow.retention, Path(cfg.shadow.work_dir)
    kept = [c for c in cycles if c.finished][-rc.keep_cycles:]
    if current is not None and current.name not in {c.cycle_id for c in kept}:
        kept += [c for c in cycles if c.cycle_id == current.name]
    rep.kept_cycles = [c.cycle_id for c in kept]
    rep.items = _cache_items(work)
    # now: the running cycle's stamp, else the clock
    now = (parse_stamp(current.name) if current is not None else None) or dt.datetime.now(dt.UTC)
    ahead = rcad.dated_ahead("cycle(s)", [c.cycle_id for c in cycles], now, "export bundle or optimize folder",
                             "artifacts_dir")
    if ahead:
        rep.problems.append(ahead)
    try:
        if policy_busy:
            raise PromotionError(policy_busy)
        raw = [*((s, "the promotion history") for s in policy_pins(cfg.promotion.state_dir)),
               *((s, "shadow.retention.pin") for s in rc.pin),
               *([(cfg.phase2.bundle, "phase2.bundle")] if cfg.phase2.bundle else []),
               (cfg.canary.candidate_policy, "canary.candidate_policy"),
               (cfg.canary.baseline_policy, "canary.baseline_policy"), *rcad.config_pins(rc.pin_configs, cfg, config_name)]
    except (PromotionError, rcad.PinsUnreadable) as exc:
        rep.problems.append(f"{exc}; no bundle, model or cycle folder is removed until it is fixed")
        return
    p2 = rcad.phase2_runs(cfg.phase2.out_dir)
    p2_pins, p2_unknown = rcad.phase2_pins(rcad.kept(p2, rc.keep_phase2))
    raw += p2_pins
    # ids are hex and stamps in any case; a policy id may be a symlink to (or a path through one into) a folder
    pins = [(s.lower(), by) for s, by in raw + [(os.path.realpath(s), by) for s, by in raw if os.path.exists(s)]]

    def pinned(p: Path) -> bool:
        hit = list(dict.fromkeys(by for s, by in pins if p.name.lower() in s))
        if hit and str(p) not in rep.pinned:
            rep.pinned.append(str(p))
            rep.pinned_by[str(p)] = ", ".join(hit)
        return bool(hit)

    if not ahead:
        rep.items += _cycle_items(work, cycles, set(rep.kept_cycles), rc, pinned)
    rep.items += [Item(*t) for t in rcad.run_items("phase-2 run", p2, rc.keep_phase2, "phase2.out_dir", pinned, rep.problems)]
    if p2_unknown:  # a kept phase-2 run reads a bundle that cannot be known: keep every bundle
        rep.problems.append(f"phase-2 run(s) {', '.join(p2_unknown)} in {cfg.phase2.out_dir}: the bundle read is "
                            f"unknown (no readable manifest.json or {rcad.USES}): no bundle is removed")
        return
    weekly = rcad.weekly_runs(cfg.weekly.bundles_dir)
    rep.items += [Item(*t) for t in rcad.run_items("weekly run", weekly, rc.keep_weekly, "weekly.bundles_dir", pinned,
                                                         rep.problems)]
    unread = [c.cycle_id for c in kept if c.manifest is None and c.cycle_id != (current.name if current else None)]
    if unread:  # a kept cycle whose bundle cannot be known: keep every bundle until it ages out
        rep.problems.append(f"manifest of kept cycle(s) {', '.join(unread)} unreadable: no export bundle is removed")
        return
    names = {n for n in [current_bundle, *map(_export_bundle, kept)] if n}
    if not ahead:
        rep.items += _bundle_items(work, names, cycles, rc.keep_cycles, pinned)


def _apart(cfg: OpsConfig, rep: PruneReport) -> list[Item]:
    """The items that hold no evidence folder (artifacts_dir, weekly.artifacts_dir, phase2.out_dir) and
    neither are, hold nor lie in a cycle's, weekly run's or phase-2 report's folder, the policy state or
    a trace root; every other one is a problem (a work folder laid over those), never removed."""
    def real(p: str | Path) -> Path:
        return Path(os.path.realpath(Path(p).expanduser()))

    roots = [real(p) for p in (cfg.artifacts_dir, cfg.weekly.artifacts_dir, cfg.phase2.out_dir)]
    evidence = [p for root in (cfg.artifacts_dir, cfg.weekly.artifacts_dir, cfg.phase2.out_dir) for _, p in list_cycles(root)]
    guarded = [*map(real, evidence), real(cfg.promotion.state_dir), *(real(s) for s in cfg.shadow.sources),
               real(cfg.weekly.traces)]
    out = []
    for it in rep.items:
        p = real(it.path)
        hit = [g for g in roots if g.is_relative_to(p)] + [g for g in guarded if g.is_relative_to(p) or p.is_relative_to(g)]
        if hit:
            rep.problems.append(f"{it.path}: not removed: it overlaps {hit[0]} (an evidence folder, a cycle's or "
                                "report's folder, promotion.state_dir or a trace root); keep work folders apart from them")
        else:
            out.append(it)
    return out


def _locked(cfg: OpsConfig, dry_run: bool, current: Path | None = None, current_bundle: str | None = None,
            config_name: str = "this config") -> PruneReport:
    """Plan and, unless ``dry_run``, move the planned folders aside, holding the policy lock: milliseconds, not the
    removal's minutes (``tracebridge.ops.retention_remove``); the caller removes them (``apply_prune``) after it."""
    with policy_lock(cfg) as busy:
        rep = plan_prune(cfg, current, current_bundle, dry_run, policy_busy=busy, config_name=config_name)
        if not dry_run:
            detach(rep)
    return rep


def prune(cfg: OpsConfig, dry_run: bool = False, config_name: str = "this config") -> PruneReport:
    """``tracebridge shadow-prune``: plan and remove under the cycle lock and the policy lock. A dry
    run takes the cycle lock without waiting, and sizes the folders after letting it go. ``config_name``
    names ``cfg`` in the problems (its file).

    Raises:
        CycleLocked: a shadow cycle is running (nothing is removed, nor listed: a running cycle's files
            cannot be told from old ones).
    """
    busy = ("a shadow cycle is running; its files cannot be told from old ones: list them after it" if dry_run
            else "a shadow cycle is running; prune after it")
    # no work dir: no cycle ever ran here, none can be running
    with cycle_lock(cfg, busy, 0 if dry_run else None) if Path(cfg.shadow.work_dir).is_dir() else nullcontext():
        rep = _locked(cfg, dry_run, config_name=config_name)
    return apply_prune(rep)  # after both locks: a cycle, promote or rollback started now goes ahead


def prune_after_cycle(ctx: Ctx) -> dict[str, Any]:
    """The cycle's last step (``run_cycle`` calls it under the lock, before the manifest): the
    manifest's ``retention`` block. Never raises: a cycle that passed stays passed."""
    rc = ctx.shadow.retention
    if not rc.enabled:
        return {"enabled": False}
    try:
        out = (ctx.outputs.get("export") or {}).get("bundle_dir")
        current = Path(out).name if isinstance(out, str) else None
        rep = apply_prune(_locked(ctx.cfg, False, current=ctx.bundle, current_bundle=current, config_name=ctx.config_name))
    except Exception as exc:  # retention must never fail a cycle; the manifest says why
        log.exception("retention failed")
        return {"enabled": True, "error": f"{type(exc).__name__}: {exc}", "removed": 0, "failed": 0, "bytes_freed": 0}
    return {"enabled": True, **rep.to_dict()}
