"""The 3-day review passes on a good set and fails with the right reason for each broken criterion."""

from __future__ import annotations

import datetime as dt
import json
import os
import stat

import pytest

from tracebridge.ops.artifacts import KIND, new_bundle_dir, sha256_file, write_manifest
from tracebridge.ops.config import ReviewConfig
from tracebridge.ops.review import review

NOW = dt.datetime(2026, 3, 4, 8, 0, tzinfo=dt.UTC)


def make_cycle(root, at, *, status="ok", hook="ok", uplift=0.05, integrity=None, harvest=True,
               chunk=None, audit_ok=True, steps=None):
    b = new_bundle_dir(root, at)
    (b / "feedback").mkdir()
    audit = b / "feedback" / "audit.json"
    audit.write_text(json.dumps({"day": str(at.date()), "harvest_ran": harvest}))
    (b / "docs").mkdir()
    (b / "docs" / "chunk-policy.md").write_text("last chunk labels the batch")
    man = {
        "kind": KIND, "cycle_id": b.name, "started_at": at.isoformat(), "finished_at": at.isoformat(),
        "status": status, "tracebridge_version": "0.1.0", "git_sha": None, "config": {}, "config_hash": "x",
        "inputs": {}, "steps": {"runtime_hook": {"status": hook}, **(steps or {})},
        "uplift": {"metric": "verifier/accuracy", "baseline": 0.5, "optimized": 0.5 + uplift, "uplift": uplift},
        "integrity": integrity or {"runs_total": 40, "schema_valid_pct": 100.0, "lineage_valid_pct": 99.5,
                                   "quarantine_pct": 2.0, "reconciled": True},
        "feedback": {"day": str(at.date()), "harvest_ran": harvest, "audit_file": "feedback/audit.json",
                     "audit_sha256": sha256_file(audit)},
        "chunk_policy": chunk or {"doc": "docs/chunk-policy.md", "doc_sha256": "abc", "applied": True,
                                  "batches": 3, "batches_in_export": 3, "batches_labelled": 2, "violations": 0},
    }
    write_manifest(b, man)
    if not audit_ok:
        audit.chmod(audit.stat().st_mode | stat.S_IWUSR)
        audit.write_text("edited later")
    return b


def good_set(root, n=3, per_cycle=None):
    """One cycle a day at 02:00 for the last n days; per_cycle maps cycle index -> overrides."""
    out = []
    for k in range(n):
        at = NOW.replace(hour=2) - dt.timedelta(days=n - 1 - k)
        out.append(make_cycle(root, at, **(per_cycle or {}).get(k, {})))
    return out


def lines(rep):
    return {ln.criterion: ln for ln in rep.lines}


def test_good_three_day_set_passes(tmp_path):
    good_set(tmp_path)
    rep = review(tmp_path, ReviewConfig(), now=NOW)
    assert rep.passed, [(ln.criterion, ln.evidence) for ln in rep.lines]
    assert len(rep.cycles) == 3
    ev = lines(rep)
    assert ev["cycles"].evidence.startswith("3 of 3 cycles ok")
    assert "+0.0500" in ev["uplift"].evidence


BAD_INTEGRITY = {"runs_total": 40, "schema_valid_pct": 100.0, "lineage_valid_pct": 95.0,
                 "quarantine_pct": 2.0, "reconciled": True}


@pytest.mark.parametrize("broken, per_cycle, words", [
    ("cycles", {1: {"status": "failed", "hook": "skipped"}}, "2 of 3 cycles ok"),
    ("runtime_hook", {2: {"hook": "failed", "status": "ok"}}, "failed in"),
    ("uplift", {1: {"uplift": -0.01}}, "not positive"),
    ("uplift", {1: {"uplift": 0.001}}, "unstable"),
    ("integrity", {2: {"integrity": BAD_INTEGRITY}}, "lineage_valid_pct 99.50 -> 95.00"),
    ("integrity", {0: {"integrity": {**BAD_INTEGRITY, "lineage_valid_pct": 99.5, "reconciled": False}}},
     "do not reconcile"),
    ("feedback", {1: {"harvest": False}}, "no auditable harvest"),
    ("chunk_policy", {0: {"chunk": {"doc": "docs/x.md", "doc_sha256": "a", "applied": False}}}, "not applied"),
    ("chunk_policy", {2: {"chunk": {"doc": "docs/x.md", "doc_sha256": None, "applied": True}}}, "not documented"),
])
def test_each_criterion_fails_on_its_own(tmp_path, broken, per_cycle, words):
    good_set(tmp_path, per_cycle=per_cycle)
    rep = review(tmp_path, ReviewConfig(), now=NOW)
    assert not rep.passed
    failing = {ln.criterion for ln in rep.lines if not ln.passed}
    assert failing == {broken}, [(ln.criterion, ln.evidence) for ln in rep.lines]
    assert words in lines(rep)[broken].evidence


def test_a_missing_day_fails_feedback_and_cycles(tmp_path):
    good_set(tmp_path, n=2)
    rep = review(tmp_path, ReviewConfig(), now=NOW)  # two uplifts: not enough cycles to call them stable
    assert {ln.criterion for ln in rep.lines if not ln.passed} == {"cycles", "feedback", "uplift"}
    assert "(no cycle)" in lines(rep)["feedback"].evidence


def test_edited_artifacts_are_caught(tmp_path):
    good_set(tmp_path, per_cycle={1: {"audit_ok": False}})
    rep = review(tmp_path, ReviewConfig(), now=NOW)
    ev = lines(rep)
    assert not rep.passed and not ev["integrity"].passed
    assert "changed after the cycle" in ev["integrity"].evidence


def test_crashed_cycle_without_manifest_and_old_cycles(tmp_path):
    good_set(tmp_path)
    new_bundle_dir(tmp_path, NOW - dt.timedelta(hours=1))  # a cycle that died before its manifest
    make_cycle(tmp_path, NOW - dt.timedelta(days=5), uplift=-1)  # outside the window: ignored
    rep = review(tmp_path, ReviewConfig(), now=NOW)
    assert rep.passed and len(rep.cycles) == 4
    assert "no manifest" in lines(rep)["cycles"].evidence
    os.makedirs(tmp_path / "not-a-cycle")
    assert review(tmp_path, ReviewConfig(), now=NOW).passed


def test_daily_cycles_at_the_timers_random_delay_pass_a_review_run_right_after_one(tmp_path):
    # RandomizedDelaySec=10m: the 03-02 cycle started at 02:24, the 03-03 one at 02:16. A review right
    # after the last cycle put both in the second slice and left the first one empty ("no cycle")
    base = dt.datetime(2026, 3, 1, 2, 15, tzinfo=dt.UTC)
    ats = [base + dt.timedelta(days=k, minutes=j) for k, j in enumerate([3, 9, 1, 2])]
    for at in ats:
        make_cycle(tmp_path, at)
    now = ats[-1] + dt.timedelta(minutes=2)
    rep = review(tmp_path, ReviewConfig(), now=now)
    assert rep.passed, [(ln.criterion, ln.evidence) for ln in rep.lines]
    strict = lines(review(tmp_path, ReviewConfig(slice_tolerance_min=0), now=now))["feedback"]
    assert not strict.passed and "(no cycle)" in strict.evidence


def test_the_slice_tolerance_does_not_pass_a_missed_day(tmp_path):
    # 03-02 missed; with cycles at both edges of the window every slice has one within the tolerance,
    # but two of them are 48 h apart
    for k in (0, 2):
        make_cycle(tmp_path, dt.datetime(2026, 3, 1, 2, 20, tzinfo=dt.UTC) + dt.timedelta(days=k))
    make_cycle(tmp_path, dt.datetime(2026, 3, 4, 2, 10, tzinfo=dt.UTC))
    rep_now = dt.datetime(2026, 3, 4, 2, 15, tzinfo=dt.UTC)
    rep = review(tmp_path, ReviewConfig(min_cycles=2), now=rep_now)
    ev = lines(rep)["feedback"].evidence
    assert "20260301T022000Z -> 20260303T022000Z (48.0 h)" in ev, ev
    strict = lines(review(tmp_path, ReviewConfig(min_cycles=2, slice_tolerance_min=0), now=rep_now))["feedback"]
    assert "no auditable harvest in 2026-03-02T02:15Z..2026-03-03T02:15Z" in strict.evidence
    assert ReviewConfig(slice_tolerance_min=720).problems() and ReviewConfig(slice_tolerance_min=float("nan")).problems()


def _not_exercised(rep):
    return {ln.criterion for ln in rep.lines if ln.status == "not exercised"}


def test_a_chunk_policy_with_no_labelled_batch_is_not_exercised(tmp_path):
    chunk = {"doc": "docs/x.md", "doc_sha256": "a", "applied": True, "registry": "memory/feedback/sent-chunks.jsonl",
             "registry_present": False, "batches": 0, "batches_in_export": 0, "batches_labelled": 0, "violations": 0}
    good_set(tmp_path, per_cycle={k: {"chunk": chunk} for k in range(3)})
    rep = review(tmp_path, ReviewConfig(), now=NOW)
    assert not rep.passed and _not_exercised(rep) == {"chunk_policy"}
    assert {ln.criterion for ln in rep.lines if ln.status == "fail"} == set()
    ev = lines(rep)["chunk_policy"].evidence
    assert "applied to no labelled batch" in ev and "sent-chunks.jsonl, no such file" in ev
    assert rep.to_dict()["lines"][-1]["status"] == "not exercised"


def test_cycles_with_optimize_and_the_hook_turned_off_are_ok_but_leave_uplift_unmeasured(tmp_path):
    off = {"optimize": {"status": "skipped", "reason": "skipped by config"},
           "runtime_hook": {"status": "skipped", "reason": "skipped by config"}}
    for b in good_set(tmp_path, per_cycle={k: {"steps": off, "hook": "skipped"} for k in range(3)}):
        m = json.loads((b / "manifest.json").read_text())
        m.update(uplift=None, config={"shadow": {"optimize": {"mode": "off"}, "runtime_hook": False}})
        (b / "manifest.json").chmod(0o644)
        (b / "manifest.json").write_text(json.dumps(m))
    rep = review(tmp_path, ReviewConfig(), now=NOW)
    assert lines(rep)["cycles"].passed and _not_exercised(rep) == {"uplift", "runtime_hook"}
    assert "shadow.optimize.mode=off" in lines(rep)["uplift"].evidence
    assert "shadow.runtime_hook=false" in lines(rep)["runtime_hook"].evidence
    # one cycle that measured an uplift is judged; the others are named as not measured; one figure is too few
    # to call the uplift stable (it passed as "min >= 0.25 x median" of itself)
    good_set(tmp_path, n=1)
    up = lines(review(tmp_path, ReviewConfig(), now=NOW))["uplift"]
    assert not up.passed and up.status == "fail" and "not measured (optimize skipped) in" in up.evidence
    assert up.evidence.startswith("not enough cycles: 1 uplift(s) measured, stability needs 3 (review.min_uplift_cycles")


def test_an_uplift_is_stable_only_over_min_uplift_cycles_measurements(tmp_path):
    # before: `review.min_cycles=1 --days 1` over one cycle printed "PASS: phase 1 exit criteria met" on a
    # single uplift, its own median
    good_set(tmp_path, n=1)
    cfg = ReviewConfig(days=1, min_cycles=1)
    rep = review(tmp_path, cfg, now=NOW)
    assert not rep.passed and {ln.criterion for ln in rep.lines if not ln.passed} == {"uplift"}
    assert "not enough cycles: 1 uplift(s) measured" in lines(rep)["uplift"].evidence
    good_set(tmp_path / "two", n=2)  # two measured in the window: enough when the config asks two
    rep = review(tmp_path / "two", ReviewConfig(days=2, min_cycles=2), now=NOW)  # null: as many as min_cycles
    assert rep.passed, [(ln.criterion, ln.evidence) for ln in rep.lines]
    up = lines(review(tmp_path / "two", ReviewConfig(days=2, min_cycles=2, min_uplift_cycles=3), now=NOW))["uplift"]
    assert up.evidence.startswith("not enough cycles: 2 uplift(s) measured, stability needs 3")
    assert ReviewConfig(min_uplift_cycles=1).problems() == [(
        "review.min_uplift_cycles=1: must be >= 2 (stability compares cycles; one uplift is its own median); null = "
        "review.min_cycles, at least 2")]


def test_the_report_lists_each_criterion_once_in_the_order_criteria_names_them(tmp_path):
    """The names of the criteria after ``cycles`` were written twice (a tuple for the no-cycle report and
    the calls for the others); now ``CRITERIA`` names each once and both reports follow it."""
    from tracebridge.ops.review import CRITERIA

    names = [name for name, _ in CRITERIA]
    assert names == ["cycles", "runtime_hook", "uplift", "integrity", "feedback", "chunk_policy"]
    assert [ln.criterion for ln in review(tmp_path, ReviewConfig(), now=NOW).lines] == names  # no cycle
    good_set(tmp_path)
    assert [ln.criterion for ln in review(tmp_path, ReviewConfig(), now=NOW).lines] == names


def test_a_now_with_an_offset_is_the_same_instant_in_utc(tmp_path):
    """``review --now 2026-03-04T07:15:00+05:00`` printed the window as 07:15Z (the local clock time with a Z:
    five hours off) and kept +05:00 in ``window``; now the window is that instant in UTC (02:15Z)."""
    from tests.ops.test_cli import run

    r = run("review", "--artifacts", tmp_path, "--now", "2026-03-04T07:15:00+05:00", "--json")
    doc = json.loads(r.stdout)
    assert r.exit_code == 1 and doc["window"] == ["2026-03-01T02:15:00+00:00", "2026-03-04T02:15:00+00:00"]
    assert "(2026-03-01T02:15Z..2026-03-04T02:15Z)" in doc["lines"][1]["evidence"]


def test_a_hook_the_config_turned_off_in_failed_cycles_is_not_exercised(tmp_path):
    """Cycles that failed elsewhere (validate) with ``shadow.runtime_hook=false`` read "runtime_hook FAIL: never
    ran ok", sending the operator after a hook nobody ran; the hook needs no other step, so its config skip in a
    failed cycle shows nothing of it either way: not exercised, naming the key. A failed hook still fails."""
    off = {"runtime_hook": {"status": "skipped", "reason": "skipped by config"},
           "validate": {"status": "failed", "reason": "validation below thresholds"}}
    for b in good_set(tmp_path, per_cycle={k: {"status": "failed", "steps": off} for k in range(3)}):
        m = json.loads((b / "manifest.json").read_text())
        m["config"] = {"shadow": {"runtime_hook": False}}
        (b / "manifest.json").chmod(0o644)
        (b / "manifest.json").write_text(json.dumps(m))
    hook = lines(review(tmp_path, ReviewConfig(), now=NOW))["runtime_hook"]
    assert hook.status == "not exercised" and "shadow.runtime_hook=false" in hook.evidence, hook
    make_cycle(tmp_path, NOW - dt.timedelta(hours=1), hook="failed")
    assert lines(review(tmp_path, ReviewConfig(), now=NOW))["runtime_hook"].status == "fail"


def test_a_cycle_dated_after_now_is_named_not_silently_left_out(tmp_path):
    # the clock was set back an hour (an NTP step) after today's cycle ran: the review (at the clock's "now")
    # read "2 of 2 cycles ok (need 3)" with no word of the third one
    real = dt.datetime.now(dt.UTC).replace(microsecond=0)
    for h in (47, 23):
        make_cycle(tmp_path, real - dt.timedelta(hours=h))
    ahead = make_cycle(tmp_path, real + dt.timedelta(hours=1))
    cyc = lines(review(tmp_path, ReviewConfig()))["cycles"]
    assert cyc.status == "fail" and cyc.evidence.startswith("2 of 2 cycles ok (need 3)")
    assert "dated after now (" in cyc.evidence and f"not counted: {ahead.name}" in cyc.evidence
    assert "the clock was set back" in cyc.evidence
    # a past review (--now) leaves later cycles out by design: no note
    assert "dated after now" not in lines(review(tmp_path, ReviewConfig(), now=real))["cycles"].evidence


@pytest.mark.parametrize("damage, criterion, words", [
    (lambda m: m["feedback"].update(audit_file=5), "feedback", "feedback.audit_file 5 is no file in the bundle"),
    (lambda m: m["feedback"].update(audit_file="../../../../etc/hostname"), "feedback", "is no file in the bundle"),
    (lambda m: m["chunk_policy"].update(batches_labelled=0, reactions={
        "by_day": {"2026-03-03": {"present": 3, "joined": 2}}, "runs_not_in_export": [1, 2]}), "chunk_policy",
     "runs not in the export (1, 2)"),
    (lambda m: m["chunk_policy"].update(batches_labelled=0, reactions={
        "by_day": {"2026-03-03": {"present": 3, "orphans": 3}}, "orphan_samples": 5}), "chunk_policy",
     "3 are on messages in no registered batch"),
    (lambda m: (m.update(config={"shadow": {"skip": 5}}),
                m["steps"].update(runtime_hook={"status": "skipped", "reason": "skipped by config"})),
     "runtime_hook", "ok in 2 of 3 cycles; skipped in"),
])
def test_a_damaged_manifest_field_is_a_finding_not_a_traceback(tmp_path, damage, criterion, words):
    # a manifest edited by hand or damaged (an audit_file that is a number, a list of ints where run ids go, a
    # shadow.skip that is a string) stopped `tracebridge review` with a TypeError: no verdict at all
    for b in good_set(tmp_path):
        m = json.loads((b / "manifest.json").read_text())
        if b.name.startswith("20260304") or criterion == "chunk_policy":
            damage(m)
            (b / "manifest.json").chmod(0o644)
            (b / "manifest.json").write_text(json.dumps(m))
    ln = lines(review(tmp_path, ReviewConfig(), now=NOW))[criterion]
    assert words in ln.evidence, ln.evidence
