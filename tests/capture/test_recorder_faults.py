"""Recorder under faults the audit of capture found: a dropped root, values that once dropped the
whole event, a failing fsync, a close from a signal handler mid-emit, labels set after construction.
Whatever happens, the events that can be written are written, counted once, and the run validates."""

from __future__ import annotations

import json
from decimal import Decimal

from tests.conftest import MODEL_STACK
from tracebridge.capture.reader import iter_runs
from tracebridge.capture.recorder import Recorder
from tracebridge.schema.validate import check_run


def _rec(root, **kw):
    return Recorder(root, goal="g", model_stack=MODEL_STACK, runtime_config={"max_steps": 1}, **kw)


def _check(root):
    (chk,) = [check_run(r) for r in iter_runs(root)]
    assert chk.complete and chk.schema_valid and chk.lineage_valid, chk.problems
    return chk


def _session(run):
    return json.loads((run.run_dir / "session.json").read_text())


def _events(run):
    return [json.loads(x) for x in (run.run_dir / "events.jsonl").read_text().splitlines()]


def test_dropped_root_keeps_its_children_under_one_new_root(tmp_path):
    """The root was dropped (a Decimal in its payload): its first child became the root and every
    sibling after it, parent=root resolving to None, was refused as a second root and dropped."""
    with _rec(tmp_path) as run:
        root = run.emit("planner_input", role="planner",
                        payload={"goal": "g", "observation": {"price": Decimal("1.5")}})
        first = run.emit("planner_output", role="planner", payload={"plan": []}, parent=root)
        for i in range(2):
            run.emit("env_observation", role="env", payload={"observation": {"i": i}}, parent=root)
    evs = _events(run)
    assert [e["event_type"] for e in evs] == ["planner_output", "env_observation", "env_observation"]
    assert [e["parent_event_id"] for e in evs] == [None, first, first]
    assert _session(run)["capture"]["events_dropped"] == 1
    _check(tmp_path)
