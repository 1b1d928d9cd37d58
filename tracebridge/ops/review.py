"""The 3-day review (phase 1 exit): the seed's success criteria, evaluated from the artifact bundles.

The window is the ``days`` × 24 h before ``now``. Each criterion is one line (pass, fail or not
exercised) and the evidence it was decided on (cycle ids and the numbers read from their manifests):

1. ``cycles`` — at least ``min_cycles`` successful cycles (manifest ``status: ok``: no step failed;
   a step the config turned off does not fail a cycle; bundle intact).
2. ``runtime_hook`` — no cycle's ``runtime_hook`` step failed, and it ran ok at least once.
3. ``uplift`` — every uplift measured in the window (each successful cycle's, and that of a failed
   cycle whose optimize step ran) is above ``min_uplift`` and stable: the smallest is at least
   ``stability`` × the median, over at least ``min_uplift_cycles`` (None: ``min_cycles``, at least 2) measured uplifts (fewer: "not enough
   cycles", a fail: one figure is its own median and said nothing of stability). A successful cycle whose optimize step the config turned off
   (``shadow.optimize.mode=off``) measured none and is named, not judged.
4. ``integrity`` — every bundle with a manifest verifies against it (a crashed cycle has none and
   is only counted by ``cycles``); no cycle's validation failed; every cycle's counts reconcile; the
   replay set exported the same bundle in every cycle (``replay_stable``, one ``replay_bundle_id``);
   between consecutive cycles that validated no validity rate falls and no quarantine rate rises by
   more than ``integrity_tolerance`` points.
5. ``feedback`` — each 24-hour slice of the window has a cycle of its own whose feedback harvest
   ran and whose audit file is in the bundle with the hash the manifest gives (auditable); a cycle
   may lie ``slice_tolerance_min`` outside its slice (the timer's random start delay), and no two
   auditable cycles are more than 24 h + that apart.
6. ``chunk_policy`` — every successful cycle had the chunk-label policy documented and applied
   with no violations, no failed cycle found a violation, and at least one cycle's export had a
   chunked batch labelled by a reaction to apply it to. With none, reactions in the ledger for the
   window's days of which none reached a batch in the export (the latest cycle's ``chunk_policy.reactions``)
   are a broken join and fail it; no reactions leave it not exercised.

A criterion that nothing in the window could show either way (its step turned off by the config
in every cycle, or no labelled chunked batch; every criterion but ``cycles`` when the window holds no
cycle at all) is ``not exercised``: reported as such, and not a pass.
A failed cycle does not count towards ``cycles``, but what it measured still counts against the
other criteria: its uplift, a validation it failed, a chunk-label violation it found. A cycle still
running (``tracebridge.ops.review_cycles``: the live holder of the cycle lock names its folder) is left out
of every criterion and named in ``cycles``'s evidence, not counted as a crash.
"""

from __future__ import annotations

import datetime as dt
import itertools
import statistics
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tracebridge.ops.artifacts import list_cycles, sha256_file
from tracebridge.ops.config import ReviewConfig
from tracebridge.ops.cycle import LOCK
from tracebridge.ops.review_cycles import Cycle, load_cycles

PASS, FAIL, NOT_EXERCISED = "pass", "fail", "not exercised"


@dataclass
class Verdict:
    """What a criterion found: ``status`` is pass, fail, or not exercised (nothing in the window could
    show it either way, e.g. the optimize step was turned off); only pass counts as ``passed``."""

    passed: bool
    evidence: str
    status: str = ""

    def __post_init__(self) -> None:
        self.status = self.status or (PASS if self.passed else FAIL)
        self.passed = self.status == PASS


@dataclass
class Line:
    """One line of the report: a criterion's name and its ``Verdict``'s fields."""

    criterion: str
    passed: bool
    evidence: str
    status: str


@dataclass
class ReviewReport:
    window: list[str]
    cycles: list[str]
    lines: list[Line]
    running: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """Whether every criterion passed."""
        return all(ln.passed for ln in self.lines)

    def to_dict(self) -> dict[str, Any]:
        """``{passed, window, cycles, running, lines}``, each line as a dict."""
        return {"passed": self.passed, "window": self.window, "cycles": self.cycles, "running": self.running,
                "lines": [asdict(ln) for ln in self.lines]}


def _ids(cs: list[Cycle]) -> str:
    return ", ".join(c.cycle_id for c in cs) or "none"


def crit_cycles(cs: list[Cycle], cfg: ReviewConfig) -> Verdict:
    """Criterion ``cycles``: at least ``cfg.min_cycles`` successful cycles in the window."""
    ok = [c for c in cs if c.ok]
    bad = [f"{c.cycle_id} ({c.why_not_ok()})" for c in cs if not c.ok]
    ev = f"{len(ok)} of {len(cs)} cycles ok (need {cfg.min_cycles}): {_ids(ok)}"
    return Verdict(len(ok) >= cfg.min_cycles, ev + (f"; not ok: {', '.join(bad)}" if bad else ""))


def _off(cs: list[Cycle], step: str, failed_too: bool = False) -> tuple[list[Cycle], str]:
    """The ok cycles that skipped ``step`` (with ``failed_too``, the failed ones too whose config turned it
    off), and ``"ids (why)"`` of them."""
    off = [c for c in cs if c.turned_off(step) or (failed_too and c.config_off(step))]
    return off, f"{_ids(off)} ({'; '.join(sorted({c.skip_reason(step) for c in off}))})" if off else ""


def crit_runtime_hook(cs: list[Cycle]) -> Verdict:
    """Criterion ``runtime_hook``: the step failed in no cycle and ran ok in at least one (not
    exercised when the config turned it off in every cycle that could have run it, failed cycles too: the
    hook needs no other step, so a cycle that failed elsewhere shows nothing of it either)."""
    failed = [c for c in cs if c.step("runtime_hook") == "failed"]
    ran = [c for c in cs if c.step("runtime_hook") == "ok"]
    if failed:
        return Verdict(False, f"failed in {_ids(failed)}")
    off, why = _off(cs, "runtime_hook", failed_too=True)
    if not ran and off:
        return Verdict(False, f"never ran in the window: skipped in {why}; no failure, but nothing "
                    "shows the hook works (shadow.runtime_hook=true runs it)", NOT_EXERCISED)
    return Verdict(bool(ran), f"ok in {len(ran)} of {len(cs)} cycles"
                + ("" if ran else "; never ran ok in the window") + (f"; skipped in {why}" if off else ""))


def crit_uplift(cs: list[Cycle], cfg: ReviewConfig) -> Verdict:
    """Criterion ``uplift``: every uplift measured in the window (each successful cycle's, and a
    failed cycle's whose optimize step ran) is above ``cfg.min_uplift``, there are at least
    ``cfg.uplift_cycles`` of them, and the smallest is at least ``cfg.stability`` x the median."""
    off, why = _off(cs, "optimize")
    vals = []
    for c in cs:
        u = ((c.manifest or {}).get("uplift") or {}).get("uplift") if c.sound else None
        if (c.ok and not c.turned_off("optimize")) or (c.sound and _number(u)):
            vals.append((c.cycle_id, u))
    if not any(c.ok for c in cs):
        return Verdict(False, "no successful cycle with an uplift figure")
    if not vals:  # the config turned the optimize step off: there is nothing to judge, which is no pass
        return Verdict(False, f"no uplift measured in the window: optimize skipped in {why}; a stable "
                    "positive uplift needs the optimize step (shadow.optimize.mode=local or cluster)", NOT_EXERCISED)
    missing = [cid for cid, v in vals if not _number(v)]
    if missing:
        return Verdict(False, f"no uplift figure in {', '.join(missing)}")
    nums = [float(v) for _, v in vals]
    ev = ", ".join(f"{cid}: {v:+.4f}" for cid, v in vals) + (f"; not measured (optimize skipped) in {why}" if off else "")
    low = [cid for cid, v in vals if v <= cfg.min_uplift]
    if low:
        return Verdict(False, f"not positive (<= {cfg.min_uplift}) in {', '.join(low)}; {ev}")
    if len(nums) < cfg.uplift_cycles:  # one figure was its own median: "stable" on a single measurement
        return Verdict(False, f"not enough cycles: {len(nums)} uplift(s) measured, stability needs {cfg.uplift_cycles} "
                       f"(review.min_uplift_cycles, null: review.min_cycles, at least 2); {ev}")
    med = statistics.median(nums)
    if min(nums) < cfg.stability * med:
        return Verdict(False, f"unstable: min {min(nums):+.4f} < {cfg.stability} x median {med:+.4f}; {ev}")
    return Verdict(True, f"all positive, min {min(nums):+.4f} >= {cfg.stability} x median {med:+.4f}; {ev}")


_RATES = (("schema_valid_pct", -1), ("lineage_valid_pct", -1), ("quarantine_pct", +1))


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def crit_integrity(cs: list[Cycle], cfg: ReviewConfig) -> Verdict:
    """Criterion ``integrity``: every bundle with a manifest verifies (a damaged manifest too; only a
    crashed cycle has none), no validation failed, counts reconcile, the replay export is one bundle
    throughout (``_replay_problems``), and no validity or quarantine
    rate worsens by more than ``cfg.integrity_tolerance`` between consecutive cycles that validated
    (failed cycles included)."""
    problems = [p for c in cs for p in c.problems if not c.crashed]
    with_stats = []
    for c in (c for c in cs if c.sound):
        st = (c.manifest or {}).get("integrity") or {}
        if c.step("validate") == "failed":
            reason = ((c.manifest or {}).get("steps", {}).get("validate") or {}).get("reason", "")
            problems.append(f"{c.cycle_id}: validation failed ({reason})")
        validated = c.step("validate") in ("ok", "failed") and all(_number(st.get(k)) for k, _ in _RATES)
        if c.ok or validated:  # a failed cycle's rates count once its validation ran
            with_stats.append((c, st))
        if (st.get("reconciled") is not True) if c.ok else (st.get("reconciled") is False):
            problems.append(f"{c.cycle_id}: counts do not reconcile "
                            f"({st.get('reconcile_detail', 'read != accepted + quarantined')})")
    problems += _replay_problems([c for c in cs if c.sound])
    for (prev, a), (cur, b) in itertools.pairwise(with_stats):
        for key, bad_dir in _RATES:
            if not isinstance(a.get(key), (int, float)) or not isinstance(b.get(key), (int, float)):
                problems.append(f"{cur.cycle_id}: integrity.{key} missing")
                continue
            delta = (b[key] - a[key]) * bad_dir
            if delta > cfg.integrity_tolerance:
                problems.append(f"{key} {a[key]:.2f} -> {b[key]:.2f} from {prev.cycle_id} to {cur.cycle_id}")
    if problems:
        return Verdict(False, "; ".join(problems[:6]))
    if not any(c.ok for c, _ in with_stats):
        return Verdict(False, "no successful cycle with integrity stats")
    last = with_stats[-1][1]
    return Verdict(True, f"{len(with_stats)} cycles compared, bundles verify, no regression; latest "
                + ", ".join(f"{k}={last.get(k)}" for k, _ in _RATES))


def _replay_problems(cs: list[Cycle]) -> list[str]:
    """The fixed replay set's export must be the same bundle in every cycle: one the cycle itself found changed
    (``integrity.replay_stable`` false), and each change of ``integrity.replay_bundle_id`` between cycles whose
    replay step exported (a redrawn set or another export config: uplifts on either side are not comparable)."""
    out, seen = [], []
    for c in cs:
        st = (c.manifest or {}).get("integrity") or {}
        bid = st.get("replay_bundle_id")
        if st.get("replay_stable") is False:
            out.append(f"{c.cycle_id}: replay export changed (bundle {bid}, not the replay set's first bundle)")
        if isinstance(bid, str) and bid:
            seen.append((c, bid))
    out += [f"replay bundle {a} -> {b} from {p.cycle_id} to {q.cycle_id} (uplifts not comparable)"
            for (p, a), (q, b) in itertools.pairwise(seen) if a != b]
    return out


def _auditable(c: Cycle) -> str | None:
    """None when the cycle's harvest ran and its audit file verifies, else why not."""
    fb = (c.manifest or {}).get("feedback") or {}
    step = ((c.manifest or {}).get("steps") or {}).get("feedback") or {}
    if not fb and step.get("status") in ("skipped", "failed"):  # no harvest block: say what the step did
        return f"{c.cycle_id}: feedback step {step['status']} ({step.get('reason') or 'no reason recorded'})"
    if fb.get("harvest_ran") is not True:
        return f"{c.cycle_id}: harvest did not run ({fb.get('reason', 'feedback.harvest_ran false')})"
    audit = fb.get("audit_file")
    if not isinstance(audit, str) or ".." in Path(audit).parts or Path(audit).is_absolute():  # damaged: a traceback
        return f"{c.cycle_id}: feedback.audit_file {audit!r} is no file in the bundle"
    if not audit or not (c.path / audit).is_file():
        return f"{c.cycle_id}: audit file {audit} not in the bundle"
    if sha256_file(c.path / audit) != fb.get("audit_sha256"):
        return f"{c.cycle_id}: audit file {audit} does not match its sha256"
    return None


def crit_feedback(cs: list[Cycle], start: dt.datetime, days: int, tolerance_min: float = 0.0) -> Verdict:
    """Criterion ``feedback``: each of the ``days`` 24-hour slices from ``start`` has a cycle of its
    own whose harvest ran and whose audit file verifies. A cycle may lie up to ``tolerance_min``
    outside its slice: the daily timer starts cycles at a random delay (RandomizedDelaySec), so
    consecutive cycles are up to 24 h + that delay apart and a slice boundary near the cycles' time
    of day would otherwise leave a slice empty between two daily cycles. Each cycle serves one slice,
    and no two consecutive auditable cycles are more than 24 h + ``tolerance_min`` apart."""
    tol = dt.timedelta(minutes=tolerance_min)
    reasons = [(c, _auditable(c)) for c in cs]  # cs is in time order
    good = [c for c, r in reasons if r is None]
    gaps, why, i = [], [], 0
    for k in range(days):
        lo, hi = start + dt.timedelta(days=k), start + dt.timedelta(days=k + 1)
        while i < len(good) and good[i].at <= lo - tol:  # too early for this slice and every later one
            i += 1
        if i < len(good) and good[i].at <= hi + tol:  # the earliest one left serves this slice
            i += 1
            continue
        gaps.append(f"{lo:%Y-%m-%dT%H:%MZ}..{hi:%Y-%m-%dT%H:%MZ}")
        why += [r for c, r in reasons if r and lo - tol < c.at <= hi + tol and r not in why]
    if gaps:
        return Verdict(False, f"no auditable harvest in {', '.join(gaps)}"
                    + (f" ({'; '.join(why[:3])})" if why else " (no cycle)")
                    + (f"; a cycle may lie {tolerance_min:g} min outside its slice" if tolerance_min else ""))
    # cycles at both edges of the window (the timer's delay) can fill every slice around a missed day
    far = [f"{a.cycle_id} -> {b.cycle_id} ({(b.at - a.at).total_seconds() / 3600:.1f} h)"
           for a, b in itertools.pairwise(good) if b.at - a.at > dt.timedelta(days=1) + tol]
    if far:
        return Verdict(False, f"no auditable harvest for more than 24 h + {tolerance_min:g} min between "
                    f"{', '.join(far)}")
    return Verdict(True, f"harvest ran and audit verified in each of {days} days")


def _broken_join(rx: Any, start: dt.datetime | None) -> str:
    """Why the join is broken, from the latest cycle's ``chunk_policy.reactions`` (``tracebridge.ops.chunks``):
    reactions the ledger holds for the UTC days from ``start`` on, none of which reached a batch in the
    export; "" when there were none (or only ones ``other_chunks=ignore`` leaves out), when one did, or for a
    cycle that did not count them."""
    days = rx.get("by_day") if isinstance(rx, dict) else None
    if not isinstance(days, dict):
        return ""
    first = "" if start is None else start.date().isoformat()
    got = {k: 0 for k in ("present", "joined", "in_export", "ignored", "orphans")}
    for day, n in days.items():
        if isinstance(n, dict) and str(day) >= first:
            for k in got:
                got[k] += n.get(k) if isinstance(n.get(k), int) else 0
    if got["present"] - got["ignored"] <= 0 or got["in_export"]:
        return ""
    out = (f"{got['present']} reactions in the ledger {rx.get('ledger')} for the window's days (from {first or 'the start'}), "
           f"{got['joined']} of them joined to a registered chunk, 0 to a batch in the export: a broken join, not "
           "no reactions")
    samples, runs = (v if isinstance(v, list) else [] for v in (rx.get("orphan_samples"), rx.get("runs_not_in_export")))
    if got["orphans"]:
        eg = ", ".join(f"chat {o.get('chat')} message {o.get('message_id')}" for o in samples[:3] if isinstance(o, dict))
        out += (f"; {got['orphans']} are on messages in no registered batch ({eg or 'see the audit'}): the registry's "
                "chat and message ids do not match the ledger's (`tracebridge feedback labels --json` lists the orphans)")
    if got["joined"]:
        out += (f"; {got['joined']} are on batches of runs not in the export ({', '.join(map(str, runs))}): "
                "the registry's run ids do not match the exported runs'")
    return out


def crit_chunk_policy(cs: list[Cycle], start: dt.datetime | None = None) -> Verdict:
    """Criterion ``chunk_policy``: every successful cycle documented and applied the chunk-label
    policy with no violations, and at least one applied it to a batch a reaction labelled. With no
    labelled batch it fails when the latest cycle's ledger held reactions for the window's UTC days (from
    ``start``) and none of them reached a batch in the export (a broken join, ``_broken_join``), and is not
    exercised when there were none: with no labelled chunked reply in the exports, no row could break the policy."""
    bad, latest, labelled = [], {}, []
    off, why = _off(cs, "chunk_policy")
    for c in cs:
        if not c.ok:
            cp = ((c.manifest or {}).get("chunk_policy") or {}) if c.sound else {}
            if cp.get("violations"):  # a failed cycle's chunk_policy step found the policy broken
                bad.append(f"{c.cycle_id}: {cp['violations']} chunk label violations")
            continue
        if c.turned_off("chunk_policy"):
            continue
        cp = latest = (c.manifest or {}).get("chunk_policy") or {}
        n = cp.get("batches_labelled")
        if isinstance(n, int) and not isinstance(n, bool) and n > 0:
            labelled.append(c)
        if not cp.get("doc_sha256"):
            bad.append(f"{c.cycle_id}: policy not documented ({cp.get('doc', 'no doc')})")
        elif cp.get("applied") is not True:
            bad.append(f"{c.cycle_id}: policy not applied in the training join")
        elif cp.get("violations"):
            bad.append(f"{c.cycle_id}: {cp['violations']} chunk label violations")
    ok_cycles = sum(c.ok for c in cs) - len(off)
    if bad or not any(c.ok for c in cs):
        return Verdict(False, "; ".join(bad) or "no successful cycle")
    if not ok_cycles:
        return Verdict(False, f"the chunk_policy step did not run: skipped in {why}", NOT_EXERCISED)
    if not labelled:
        reg = latest.get("registry") or "the chunk registry"
        if broken := _broken_join(latest.get("reactions"), start):
            return Verdict(False, f"documented in {ok_cycles} cycles, but applied to no labelled batch: {broken}")
        return Verdict(False, f"documented in {ok_cycles} cycles, but applied to no labelled batch: no "
                    f"chunked reply in the exports was labelled by a reaction (latest: {latest.get('batches', 0)} "
                    f"batches registered in {reg}" + ("" if latest.get("registry_present", True) else ", no such file")
                    + f", {latest.get('batches_in_export', 0)} in its export); the runtime registers split replies "
                    "(tracebridge feedback chunks record)", NOT_EXERCISED)
    # the registry is cumulative: the latest cycle's counts, not a sum over cycles (it read "9 batches joined"
    # for 3 batches, 2 of them labelled)
    return Verdict(True, f"documented and applied in {ok_cycles} cycles; latest: "
                f"{latest.get('batches', 0)} chunked batches registered, {latest.get('batches_labelled', 'n/a')} "
                "labelled by a reaction in its export")


# The criteria in report order, each named once: (name, how it is judged from the window's cycles).
CRITERIA: tuple[tuple[str, Callable[[list[Cycle], dt.datetime, ReviewConfig], Verdict]], ...] = (
    ("cycles", lambda cs, start, cfg: crit_cycles(cs, cfg)),
    ("runtime_hook", lambda cs, start, cfg: crit_runtime_hook(cs)),
    ("uplift", lambda cs, start, cfg: crit_uplift(cs, cfg)),
    ("integrity", lambda cs, start, cfg: crit_integrity(cs, cfg)),
    ("feedback", lambda cs, start, cfg: crit_feedback(cs, start, cfg.days, cfg.slice_tolerance_min)),
    ("chunk_policy", lambda cs, start, cfg: crit_chunk_policy(cs, start)),
)


def review(artifacts_dir: str | Path, cfg: ReviewConfig, now: dt.datetime | None = None,
           work_dir: str | Path | None = None) -> ReviewReport:
    """Evaluate every criterion over the window ending at ``now`` (default: the current time), in UTC: the
    evidence's times end in Z, so a ``now`` with an offset (10:00+05:00) is read as the same instant (05:00Z).
    With the cycles' ``work_dir`` (shadow.work_dir: its cycle lock names the folder the running cycle writes), a
    cycle still running (no manifest yet) is left out of every criterion and named in ``cycles``'s evidence,
    not counted as crashed."""
    end = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    start = end - dt.timedelta(days=cfg.days)
    every = load_cycles(artifacts_dir, start, end, None if work_dir is None else Path(work_dir) / LOCK)
    cs, running = [c for c in every if not c.running], [c.cycle_id for c in every if c.running]
    # with no cycle, ``cycles`` reads 0 of min_cycles (a fail, so the review still fails) and every other
    # criterion has no evidence either way: a fail there read as the hook, uplift or harvest seen to fail
    none = Verdict(False, f"no cycle in the window ({start:%Y-%m-%dT%H:%MZ}..{end:%Y-%m-%dT%H:%MZ}): "
                   "nothing shows it either way", NOT_EXERCISED)
    lines = [Line(name, **asdict(judge(cs, start, cfg) if cs or name == "cycles" else none))
             for name, judge in CRITERIA]
    if running:
        lines[0].evidence += f"; still running (no manifest yet), not counted: {', '.join(running)}"
    ahead = [p.name for at, p in list_cycles(artifacts_dir) if at > end] if now is None else []
    if ahead:  # dated after now: the clock was set back (NTP, a wrong RTC) since they ran; silently left out before
        lines[0].evidence += (f"; dated after now ({end:%Y-%m-%dT%H:%M:%SZ}), not counted: {', '.join(ahead[:5])}"
                              + (f" and {len(ahead) - 5} more" if len(ahead) > 5 else "")
                              + " (the clock was set back since they ran; check it, or give --now)")
    if not Path(artifacts_dir).is_dir():  # run from another folder than the cycles', or a typo
        lines[0].evidence += (f"; no folder {Path(artifacts_dir).resolve()}: no cycle ran with this artifacts_dir "
                              "(run from the folder the cycles run in, or give --artifacts)")
    return ReviewReport([start.isoformat(), end.isoformat()], [c.cycle_id for c in cs], lines, running)
