"""The review's integrity criterion checks the fixed replay set: one export bundle in every cycle."""

from __future__ import annotations

import pytest

from tests.ops.test_review import NOW, good_set, lines
from tracebridge.ops.config import ReviewConfig
from tracebridge.ops.review import review

INTEGRITY = {"runs_total": 40, "schema_valid_pct": 100.0, "lineage_valid_pct": 99.5, "quarantine_pct": 2.0,
             "reconciled": True, "replay_bundle_id": "rb-1", "replay_stable": True}


def _set(tmp_path, changed=None):
    """Three good cycles; ``changed`` maps cycle index -> integrity keys that differ."""
    good_set(tmp_path, per_cycle={k: {"integrity": {**INTEGRITY, **v}} for k, v in
                                  {0: {}, 1: {}, 2: {}, **(changed or {})}.items()})
    return review(tmp_path, ReviewConfig(), now=NOW)


def test_one_replay_bundle_throughout_passes(tmp_path):
    assert _set(tmp_path).passed


@pytest.mark.parametrize("changed, says", [
    ({2: {"replay_stable": False, "replay_bundle_id": "rb-2"}}, "replay export changed (bundle rb-2"),
    ({1: {"replay_bundle_id": "rb-2", "replay_stable": True}, 2: {"replay_bundle_id": "rb-2"}}, "replay bundle rb-1 -> rb-2"),
    ({2: {"replay_stable": False}}, "replay export changed (bundle rb-1"),
])
def test_a_changed_replay_set_fails_integrity(tmp_path, changed, says):
    rep = _set(tmp_path, changed)
    assert {ln.criterion for ln in rep.lines if not ln.passed} == {"integrity"}
    assert says in lines(rep)["integrity"].evidence


def test_a_cycle_whose_replay_did_not_run_is_no_change(tmp_path):
    assert _set(tmp_path, {1: {"replay_bundle_id": None, "replay_stable": None}}).passed
