"""The 3-day review with more cycles in the window than it needs: a failed or damaged cycle does not
count towards ``cycles``, but its evidence still counts against the other criteria (an operator who
re-ran a failed day got a PASS over a validation failure, a negative uplift, a chunk-label violation,
a damaged manifest or a copied cycle folder)."""

from __future__ import annotations

import datetime as dt
import json
import shutil

from tests.ops.test_review import BAD_INTEGRITY, NOW, good_set, lines, make_cycle
from tracebridge.ops.config import ReviewConfig
from tracebridge.ops.review import review


def _failed_day(root, **kw):
    """A cycle that failed on the third day, before the good re-run of that day (4 cycles, 3 ok)."""
    good_set(root)
    return make_cycle(root, NOW.replace(hour=1), status="failed", **kw)


def _failing(rep):
    return {ln.criterion for ln in rep.lines if not ln.passed}


def test_a_failed_validation_fails_integrity_even_with_three_ok_cycles(tmp_path):
    _failed_day(tmp_path, integrity={**BAD_INTEGRITY, "schema_valid_pct": 97.06},
                steps={"validate": {"status": "failed", "reason": "validation below thresholds: schema-valid 97.06%"}})
    rep = review(tmp_path, ReviewConfig(), now=NOW)
    assert _failing(rep) == {"integrity"}, [(ln.criterion, ln.evidence) for ln in rep.lines]
    ev = lines(rep)["integrity"].evidence
    assert "validation failed (validation below thresholds: schema-valid 97.06%)" in ev
    assert "schema_valid_pct 100.00 -> 97.06" in ev
    assert "3 of 4 cycles ok" in lines(rep)["cycles"].evidence


def test_a_failed_cycles_negative_uplift_fails_uplift(tmp_path):
    _failed_day(tmp_path, uplift=-0.2, steps={"consumers": {"status": "failed", "reason": "datasets"}})
    rep = review(tmp_path, ReviewConfig(), now=NOW)
    assert _failing(rep) == {"uplift"}
    assert "not positive" in lines(rep)["uplift"].evidence and "-0.2000" in lines(rep)["uplift"].evidence


def test_a_failed_cycles_chunk_violations_fail_chunk_policy(tmp_path):
    _failed_day(tmp_path, chunk={"doc": "docs/x.md", "doc_sha256": "a", "applied": False, "batches": 2, "violations": 1})
    rep = review(tmp_path, ReviewConfig(), now=NOW)
    assert _failing(rep) == {"chunk_policy"}
    assert "1 chunk label violations" in lines(rep)["chunk_policy"].evidence


def test_a_failed_cycle_with_sound_evidence_does_not_block_the_review(tmp_path):
    _failed_day(tmp_path, steps={"feedback": {"status": "failed", "reason": "no harvest"}, "validate": {"status": "ok"}})
    rep = review(tmp_path, ReviewConfig(), now=NOW)
    # its uplift figure counts (it is a measurement), and it is fine here; 3 other cycles are ok
    assert rep.passed, [(ln.criterion, ln.evidence) for ln in rep.lines]
    assert "+0.0500" in lines(rep)["uplift"].evidence and "4 cycles compared" in lines(rep)["integrity"].evidence


def test_a_damaged_manifest_fails_integrity_not_only_cycles(tmp_path):
    bad = _failed_day(tmp_path)
    man = bad / "manifest.json"
    man.chmod(0o644)
    man.write_bytes(man.read_bytes()[:300])  # cut short (disk full, a bad copy)
    rep = review(tmp_path, ReviewConfig(), now=NOW)
    assert _failing(rep) == {"integrity"}
    assert "invalid JSON" in lines(rep)["integrity"].evidence
    assert f"{bad.name} (" in lines(rep)["cycles"].evidence and "manifest.json: invalid JSON" in lines(rep)["cycles"].evidence


def test_a_crashed_cycle_without_manifest_is_only_a_failed_cycle(tmp_path):
    bad = _failed_day(tmp_path)
    (bad / "manifest.json").unlink()
    rep = review(tmp_path, ReviewConfig(), now=NOW)
    assert rep.passed, [(ln.criterion, ln.evidence) for ln in rep.lines]


def test_a_copied_cycle_folder_is_not_another_cycle(tmp_path):
    first = make_cycle(tmp_path, NOW.replace(hour=2) - dt.timedelta(days=2))
    for k in (1, 0):  # the same cycle copied under the next two days' names
        shutil.copytree(first, tmp_path / (NOW.replace(hour=2) - dt.timedelta(days=k)).strftime("%Y%m%dT%H%M%SZ"))
    rep = review(tmp_path, ReviewConfig(), now=NOW)
    assert not rep.passed
    assert "1 of 3 cycles ok" in lines(rep)["cycles"].evidence
    assert "is not the folder name" in lines(rep)["integrity"].evidence


def test_not_ok_cycles_say_which_steps_failed(tmp_path):
    _failed_day(tmp_path, steps={"feedback": {"status": "failed", "reason": "no harvest"},
                                 "optimize": {"status": "skipped", "reason": "skipped by config"}})
    ev = lines(review(tmp_path, ReviewConfig(), now=NOW))["cycles"].evidence
    assert "(failed: feedback failed; optimize skipped by config)" in ev


def test_a_negative_min_uplift_is_a_config_error():
    # the review would print "all positive" over negative uplifts; the plan asks a positive one
    assert any("must be >= 0" in p for p in ReviewConfig(min_uplift=-1.0).problems())
    assert not ReviewConfig(min_uplift=0.0).problems()


def test_chunk_policy_evidence_counts_the_latest_cycle_not_a_sum(tmp_path):
    chunk = {"doc": "docs/x.md", "doc_sha256": "a", "applied": True, "batches": 3, "batches_labelled": 2, "violations": 0}
    good_set(tmp_path, per_cycle={k: {"chunk": chunk} for k in range(3)})
    ev = lines(review(tmp_path, ReviewConfig(), now=NOW))["chunk_policy"].evidence
    assert "3 chunked batches registered, 2 labelled" in ev and "9" not in ev


def test_a_day_whose_feedback_step_was_skipped_says_so(tmp_path):
    good_set(tmp_path, per_cycle={1: {"status": "failed", "steps": {
        "feedback": {"status": "skipped", "reason": "skipped by config"}}}})
    man = sorted(tmp_path.iterdir())[1] / "manifest.json"
    m = json.loads(man.read_text())
    m["feedback"] = None  # what the cycle writes when the step did not run
    man.chmod(0o644)
    man.write_text(json.dumps(m))
    ev = lines(review(tmp_path, ReviewConfig(), now=NOW))["feedback"].evidence
    assert "feedback step skipped (skipped by config)" in ev
