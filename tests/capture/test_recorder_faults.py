"""Recorder under faults the audit of capture found: a dropped root, values that once dropped the
whole event, a failing fsync, a close from a signal handler mid-emit, labels set after construction.
Whatever happens, the events that can be written are written, counted once, and the run validates."""

from __future__ import annotations

import asyncio
import json
import threading
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


def test_asyncio_tasks_and_new_threads_default_to_their_own_previous_events(tmp_path):
    """The default parent was kept by thread id: two asyncio tasks of one thread crossed (a call hung
    under the other task's action), and a new thread given a dead thread's id (glibc reuses them)
    hung its first event under the dead thread's last."""
    with _rec(tmp_path) as run:
        root = run.emit("planner_input", role="planner", payload={"goal": "g"})

        async def task(i):
            ids = [run.emit("env_observation", role="env", payload={"observation": {"task": i, "n": n}})
                   for n in range(1)]
            for n in range(1, 3):
                await asyncio.sleep(0)  # the other task emits in between
                ids.append(run.emit("env_observation", role="env", payload={"observation": {"task": i, "n": n}}))
            return ids

        async def main():
            return await asyncio.gather(task(0), task(1))

        chains = asyncio.run(main())
        firsts = []
        for _ in range(4):
            before = run.emit("env_observation", role="env", payload={"observation": {"main": True}}, parent=root)
            t = threading.Thread(target=lambda b: firsts.append(
                (b, run.emit("env_observation", role="env", payload={"observation": {"thread": True}}))), args=(before,))
            t.start()
            t.join()
    parents = {e["event_id"]: e["parent_event_id"] for e in _events(run)}
    for chain in chains:
        assert [parents[e] for e in chain] == [root, *chain[:-1]]
    assert [parents[e] for _, e in firsts] == [before for before, _ in firsts]
    _check(tmp_path)
