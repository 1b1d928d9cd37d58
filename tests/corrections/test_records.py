"""The corrections file and its join to a run's events: every line checked, bad ones quarantined
as ``file:line: field: reason``, the last line of a (run, event, label) winning, copies merged
in memory (the inputs never change)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import record_sample_run
from tracebridge.corrections.apply import apply_corrections, combine, match_run, overlay
from tracebridge.corrections.records import (
    Correction,
    CorrectionsError,
    check_line,
    read_corrections,
)

TIME = "2026-11-27T10:00:00Z"


@pytest.fixture
def run(tmp_path: Path) -> tuple[str, list[dict[str, Any]]]:
    rid = record_sample_run(tmp_path / "traces")
    return rid, [json.loads(x) for x in (tmp_path / "traces" / rid / "events.jsonl").read_text().splitlines()]


def _id(events: list[dict[str, Any]], etype: str) -> str:
    return next(e["event_id"] for e in events if e["event_type"] == etype)


def _ok(obj: dict[str, Any], line: int = 1) -> Correction:
    got = check_line({"reviewer": "alice", "time": TIME, **obj}, f"c.jsonl:{line}", line)
    assert isinstance(got, Correction), got
    return got


def test_each_field_is_checked_and_every_problem_named() -> None:
    assert check_line([1], "f:1", 1) == ["<line>: not a JSON object"]
    probs = check_line({"run_id": "", "event_id": "", "labels": {"expected_verdict": "stop", "fault": "x",
                                                                   "expected_plan": [{"tool": 3, "extra": 1}]},
                        "reviewer": " ", "time": "yesterday", "note": 5, "who": "me"}, "f:1", 1)
    assert isinstance(probs, list)
    for want in ("who: unknown key(s)", "run_id: missing or empty", "event_id: must be an event id or null",
                 "labels.expected_verdict: must be one of continue|replan|end, got 'stop'",
                 "labels.fault: unknown label", "labels.expected_plan[0]: unknown key(s) extra",
                 "labels.expected_plan[0].description: missing or empty", "labels.expected_plan[0].tool: must be",
                 "reviewer: missing or empty", "time: missing or not an ISO 8601 time", "note: must be a string"):
        assert any(p.startswith(want) for p in probs), (want, probs)
    assert check_line({"run_id": "r", "event_id": None, "labels": {"success": 1}, "reviewer": "a", "time": TIME},
                      "f:1", 1) == ["labels.success: must be true or false, got 1"]
    assert check_line({"run_id": "r", "event_id": "e", "labels": {"success": True}, "reviewer": "a", "time": TIME},
                      "f:1", 1) == ["labels.success: a run-level label; set event_id to null"]


def test_values_are_normalised() -> None:
    c = _ok({"run_id": " r1 ", "labels": {"success": True}, "time": "2026-11-27T11:00:00+01:00"})
    assert (c.run_id, c.event_id, c.time, c.labels) == ("r1", None, TIME, {"success": True})
    plan = _ok({"run_id": "r1", "event_id": "e", "labels": {"expected_plan": [
        {"index": 7, "description": "read", "tool": "read_file", "args": {"path": "a"}}, {"description": "answer"}]}})
    assert plan.labels["expected_plan"] == [
        {"index": 0, "description": "read", "tool": "read_file", "args": {"path": "a"}},
        {"index": 1, "description": "answer", "tool": None, "args": None}]


def test_read_counts_every_line(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    good = {"run_id": "r1", "event_id": None, "labels": {"success": False}, "reviewer": "a", "time": TIME}
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(good).encode() + b"\n\n{oops\n"
                     + json.dumps({**good, "labels": {}}).encode() + b"\n" + json.dumps({**good, "run_id": "r2"}).encode())
    f = read_corrections(path)
    assert (f.read, f.valid, len(f.bad)) == (4, 2, 2) and sorted(f.by_run) == ["r1", "r2"]
    assert [line for line, _ in f.bad] == [3, 4]
    assert f.bad[0][1].startswith(f"{path}:3: <line>: invalid JSON")
    assert f.bad[1][1] == f"{path}:4: labels: must be a non-empty object"
    assert f.by_run["r1"][0].where == f"{path}:1"
    with pytest.raises(CorrectionsError, match="missing.jsonl"):
        read_corrections(tmp_path / "missing.jsonl")


def test_match_checks_events_and_the_last_line_wins(run: tuple[str, list[dict[str, Any]]]) -> None:
    rid, events = run
    vo, po, act = _id(events, "verifier_output"), _id(events, "planner_output"), _id(events, "worker_action")
    lines = [_ok({"run_id": rid, "event_id": vo, "labels": {"expected_verdict": "replan", "goal_met": False}}, 1),
             _ok({"run_id": rid, "event_id": po, "labels": {"goal_met": True}}, 2),             # wrong type
             _ok({"run_id": rid, "event_id": "nope", "labels": {"goal_met": True}}, 3),         # no such event
             _ok({"run_id": rid, "event_id": vo, "labels": {"expected_verdict": "continue"}, "reviewer": "bob"}, 4),
             _ok({"run_id": rid, "event_id": act, "labels": {"expected_tool": "count"}}, 5),
             _ok({"run_id": rid, "event_id": None, "labels": {"success": False}}, 6),
             _ok({"run_id": rid, "event_id": None, "labels": {"success": True}, "reviewer": "bob"}, 7)]
    out, fold = match_run(lines, events, rid)
    assert (out.applied, out.read, out.superseded) == ([1, 4, 5, 6, 7], 7, 2)
    assert out.quarantined == [(2, (f"c.jsonl:2: labels.goal_met: event {po} is a planner_output; "
                                    "goal_met goes on a worker_action or worker_output or verifier_output"))]
    assert out.unmatched == [(3, {"where": "c.jsonl:3", "run_id": rid, "event_id": "nope"})]
    assert (out.trace_success, out.success) == (True, True)
    assert dict(out.labels) == {"expected_verdict": 1, "goal_met": 1, "expected_tool": 1, "success": 1}
    assert fold.events[vo]["expected_verdict"][0] == "continue" and fold.events[vo]["goal_met"][0] is False


def test_apply_merges_into_copies_and_overlays_every_corrected_event(run: tuple[str, list[dict[str, Any]]]) -> None:
    rid, events = run
    vo, act = _id(events, "verifier_output"), _id(events, "worker_action")
    events[[e["event_id"] for e in events].index(act)]["labels"] = {"expected_tool": "read_file",
                                                                    "expected_args": {"path": "old"}}
    session = {"run_id": rid, "labels": {"kept": 1}}
    snapshot = copy.deepcopy((events, session))
    lines = [_ok({"run_id": rid, "event_id": vo, "labels": {"expected_verdict": "replan"}}, 1),
             _ok({"run_id": rid, "event_id": vo, "labels": {"goal_met": False}, "reviewer": "bob"}, 2),
             _ok({"run_id": rid, "event_id": act, "labels": {"expected_tool": "count"}}, 3),  # clears the old args
             _ok({"run_id": rid, "event_id": None, "labels": {"success": False}, "reviewer": "carol"}, 4)]
    _, fold = match_run(lines, events, rid)
    seen: list[dict[str, Any]] = []

    def redact(rec: dict[str, Any]) -> dict[str, Any]:
        seen.append(rec)
        return {**rec, "labels": {k: (v.upper() if isinstance(v, str) else v) for k, v in rec["labels"].items()}}

    new_events, new_session = apply_corrections(events, session, fold, redact)
    assert (events, session) == snapshot  # the inputs are never modified
    by_id = {e["event_id"]: e for e in new_events}
    assert by_id[vo]["labels"] == {"expected_verdict": "REPLAN", "goal_met": False, "corrected_by": "ALICE, BOB"}
    assert by_id[act]["labels"] == {"expected_tool": "COUNT", "corrected_by": "ALICE"}
    assert new_session["labels"] == {"kept": 1, "corrected_success": False, "outcome_corrected_by": "CAROL"}
    assert len(seen) == 3 and [e for e in new_events if e["event_id"] not in (vo, act)] == \
        [e for e in events if e["event_id"] not in (vo, act)]
    ov = overlay(new_events, new_session, fold, True)
    assert ov["run"] == {"outcome_source": "correction", "outcome_corrected_by": "CAROL", "trace_success": True}
    assert ov["events"][act] == {"expected_tool": "COUNT", "expected_args": None, "corrected_by": "ALICE"}
    both = combine({"run": {"feedback_score": 1.0}, "events": {vo: {"feedback_score": -1.0}}}, ov)
    assert both is not None and both["run"]["feedback_score"] == 1.0 and both["run"]["outcome_source"] == "correction"
    assert both["events"][vo]["feedback_score"] == -1.0 and both["events"][vo]["corrected_by"] == "ALICE, BOB"
    assert apply_corrections(events, session, match_run([], events)[1]) == (events, session)


def test_a_time_without_a_utc_equivalent_is_a_bad_line() -> None:
    from tracebridge.corrections.records import check_line

    line = {"run_id": "r", "event_id": None, "labels": {"success": True}, "reviewer": "x",
            "time": "0001-01-01T00:00:00+01:00"}
    probs = check_line(line, "c.jsonl", 1)  # before: OverflowError out of the check and the export
    assert isinstance(probs, list) and any(p.startswith("time:") for p in probs), probs
