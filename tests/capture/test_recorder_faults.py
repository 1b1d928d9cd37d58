"""Recorder under faults the audit of capture found: a dropped root, values that once dropped the
whole event, a failing fsync, a close from a signal handler mid-emit, labels set after construction.
Whatever happens, the events that can be written are written, counted once, and the run validates."""

from __future__ import annotations

import asyncio
import dataclasses
import errno
import json
import os
import threading

import numpy as np
import pytest
from pydantic import BaseModel

from tests.capture.test_recorder_misuse import _events, _rec, _session
from tests.conftest import MODEL_STACK
from tracebridge.capture import writer as writer_module
from tracebridge.capture.reader import iter_runs
from tracebridge.capture.recorder import Recorder
from tracebridge.curate.redact import capture_redactor
from tracebridge.schema.validate import check_run


def _check(root):  # a run with faults may list problems (drops); it still validates
    (chk,) = [check_run(r) for r in iter_runs(root)]
    assert chk.complete and chk.schema_valid and chk.lineage_valid, chk.problems
    return chk


def test_dropped_root_keeps_its_children_under_one_new_root(tmp_path):
    """The root was dropped (a complex number in its payload): its first child became the root and every
    sibling after it, parent=root resolving to None, was refused as a second root and dropped."""
    with _rec(tmp_path) as run:
        root = run.emit("planner_input", role="planner",
                        payload={"goal": "g", "observation": {"price": 1.5j}})
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


class _Score(BaseModel):
    value: float


@dataclasses.dataclass
class _Reading:
    value: float


@pytest.mark.parametrize("redactor", [None, capture_redactor])
def test_nan_anywhere_in_a_payload_is_kept_as_a_string_and_counted(tmp_path, redactor):
    """numpy's float64 NaN dropped the whole event (its repr is 'np.float64(nan)'); a NaN in a nested
    model or dataclass was written as null, uncounted; with a redactor, a NaN beside a set (or bytes,
    numpy, a model) was nulled by the JSON round trip before it could be counted."""
    with _rec(tmp_path, redactor=redactor() if redactor else None) as run:
        run.emit("planner_input", role="planner", payload={"goal": "g"})
        for obs in ({"np": np.float64("nan"), "np_inf": np.float64("-inf")},
                    {"model": _Score(value=float("inf")), "dc": _Reading(float("nan"))},
                    {"tags": {"a"}, "x": float("nan")}):
            run.emit("env_observation", role="env", payload={"observation": obs})
    obs = [e["payload"]["observation"] for e in _events(run)[1:]]
    assert obs == [{"np": "NaN", "np_inf": "-Infinity"}, {"model": {"value": "Infinity"}, "dc": {"value": "NaN"}},
                   {"tags": ["a"], "x": "NaN"}]
    capture = _session(run)["capture"]
    assert (capture["events_dropped"], capture["nonfinite_values"]) == (0, 5)


def test_failing_fsync_counts_an_error_not_a_dropped_event(tmp_path, monkeypatch):
    """The line was on disk when the interval fsync failed, yet the event was counted as dropped and
    its children rerouted around it; with fsync failing, every later event did the same."""
    real = os.fsync

    def fsync(fd):  # only the events file's sync fails: session.json is still written
        if os.readlink(f"/proc/self/fd/{fd}").endswith("events.jsonl"):
            raise OSError(errno.EIO, "fsync failed")
        real(fd)

    monkeypatch.setattr(writer_module.os, "fsync", fsync)
    with _rec(tmp_path, fsync_interval_s=0) as run:
        ids = [run.emit("planner_input", role="planner", payload={"goal": "g"})]
        ids += [run.emit("env_observation", role="env", payload={"observation": i}) for i in range(3)]
    evs = _events(run)
    assert [e["event_id"] for e in evs] == ids
    assert [e["parent_event_id"] for e in evs] == [None, *ids[:-1]]  # nothing rerouted
    capture = _session(run)["capture"]
    assert capture["events_written"] == 4 and capture["events_dropped"] == 0
    assert capture["errors"] == 2  # the first interval sync (then backed off) and the one at close
    _check(tmp_path)


class _Hook:
    """A redaction hook that runs ``during`` mid-emit, as a signal handler would (same thread, lock held)."""

    policy = "test"

    def __init__(self, during):
        self.during, self.calls = during, 0

    def redact(self, record, scope=None):
        self.calls += 1
        if self.calls == 2:
            self.during()
        return record

    def findings(self, scope=None):
        return {}


def _in_thread(work):
    """``work()`` in a thread, failing (not hanging) when it deadlocks."""
    t = threading.Thread(target=work, daemon=True)
    t.start()
    t.join(timeout=10)
    assert not t.is_alive(), "deadlocked"


def test_close_from_a_signal_handler_mid_emit_closes_after_that_emit(tmp_path):
    """A handler calling run.close() while the run's lock was held by an emit deadlocked."""
    run = _rec(tmp_path, redactor=_Hook(lambda: run.close()))

    def work():
        with run:
            run.emit("planner_input", role="planner", payload={"goal": "g"})
            run.emit("env_observation", role="env", payload={"observation": 1})  # the handler runs in here
            run.emit("env_observation", role="env", payload={"observation": 2})  # after close: refused

    _in_thread(work)
    assert [e["payload"].get("observation") for e in _events(run)] == [None, 1]
    capture = _session(run)["capture"]
    assert (capture["events_written"], capture["events_dropped"]) == (2, 0)  # session.json as of the close
    assert run.stats.errors == 1  # the emit after close


def test_emit_from_a_signal_handler_mid_emit_is_refused_not_written_out_of_order(tmp_path):
    run = _rec(tmp_path, redactor=_Hook(lambda: run.emit("env_observation", role="env", payload={"observation": 0})))

    def work():
        with run:
            run.emit("planner_input", role="planner", payload={"goal": "g"})
            run.emit("env_observation", role="env", payload={"observation": 1})

    _in_thread(work)
    assert [e["payload"].get("observation") for e in _events(run)] == [None, 1]
    assert _session(run)["capture"]["events_dropped"] == 1
    _check(tmp_path)


def test_session_redaction_record_counts_the_session_and_only_this_run(tmp_path):
    """data_governance was built before the session was redacted (PII only in the goal: replaced, yet
    pii_scan said clean) from findings() of whichever run the shared redactor saw last."""
    shared = capture_redactor()
    quiet = Recorder(tmp_path, goal="write to bob@example.com", model_stack=MODEL_STACK,
                     runtime_config={"max_steps": 1}, redactor=shared)
    busy = _rec(tmp_path, redactor=shared)
    with quiet, busy:
        quiet.emit("planner_input", role="planner", payload={"goal": "no pii here"})
        busy.emit("planner_input", role="planner", payload={"goal": "a@example.com b@example.org c@example.net"})
        quiet.close()  # the redactor saw busy last
    gov = _session(quiet)["data_governance"]
    assert "bob@example.com" not in json.dumps(_session(quiet))
    assert gov["pii_scan"] == "findings" and gov["passes"][0]["findings"] == {"EMAIL": 1}
    assert _session(busy)["data_governance"]["passes"][0]["findings"] == {"EMAIL": 3}


def test_pii_only_in_the_goal_is_recorded_as_found(tmp_path):
    with Recorder(tmp_path, goal="write to bob@example.com", model_stack=MODEL_STACK, runtime_config={"max_steps": 1},
                  redactor=capture_redactor()) as run:
        run.emit("planner_input", role="planner", payload={"goal": "no pii here"})
    gov = _session(run)["data_governance"]
    assert (gov["pii_scan"], gov["passes"][0]["findings"]) == ("findings", {"EMAIL": 1})
    _check(tmp_path)


def test_usage_in_openais_shape_is_mapped_and_a_bad_one_left_out(tmp_path):
    """A usage dict in OpenAI's shape passed llm_call but failed the event's check: the whole LLM event
    was dropped. Now it is mapped to ours; a usage the schema refuses is left out, the event kept."""
    openai = {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17}
    with _rec(tmp_path) as run:
        run.emit("planner_input", role="planner", payload={"goal": "g"})
        for usage in (openai, {"input_tokens": -1}, {"input_tokens": 3, "cost_usd": 0.5}):
            run.emit("planner_output", role="planner", payload={"plan": []},
                     llm=run.llm_call("m", "prompt", usage=usage))
    usages = [e["llm"]["usage"] for e in _events(run)[1:]]
    assert usages == [{"input_tokens": 12, "output_tokens": 5}, {}, {"input_tokens": 3, "cost_usd": 0.5}]
    sess = _session(run)
    assert (sess["capture"]["events_dropped"], sess["capture"]["errors"]) == (0, 1)  # the refused usage
    assert sess["summary"]["tokens"] == 20
    _check(tmp_path)


def test_label_set_after_construction_that_json_cannot_hold_is_left_out_of_session_json(tmp_path, caplog):
    """A bad run label set after construction meant no session.json at all."""
    with _rec(tmp_path, labels={"dataset": "csv-v2"}) as run:
        run.emit("planner_input", role="planner", payload={"goal": "g"})
        run.labels["judge"] = object()
        run.labels[3] = "three"
        run.labels["score"] = float("nan")
    sess = _session(run)
    assert sess["labels"] == {"dataset": "csv-v2", "score": "NaN"}
    assert sess["capture"]["errors"] == 2 and sess["capture"]["nonfinite_values"] == 1
    assert "label 'judge'" in caplog.text and "label 3" in caplog.text
    _check(tmp_path)


def test_ctrl_c_right_after_a_line_is_written_counts_it_written_not_dropped(tmp_path):
    """A SIGINT that arrives while ``os.write`` runs is raised as KeyboardInterrupt right after it returns, the
    line already in the file. The emit counted it dropped (3 of 4 Ctrl-Cs while writing large lines): session.json
    said ``events_dropped: 1`` for a run with no gap (validate failed it: "the run has gaps"), and the
    ``episode_error`` after it took the event's parent for its own."""
    import signal
    import sys

    fired = []

    def sigint_after_write(frame, event, arg):  # the signal lands while the write runs: Python raises it after
        if event == "c_return" and arg is os.write and not fired:
            fired.append(True)
            signal.raise_signal(signal.SIGINT)

    run = _rec(tmp_path, fsync_interval_s=None)
    with pytest.raises(KeyboardInterrupt), run:
        run.emit("planner_input", role="planner", payload={"goal": "g"})
        sys.setprofile(sigint_after_write)
        try:
            run.emit("env_observation", role="env", payload={"observation": "big"})
        finally:
            sys.setprofile(None)
    assert fired
    evs = _events(run)
    assert [e["event_type"] for e in evs] == ["planner_input", "env_observation", "episode_error", "episode_end"]
    assert _session(run)["capture"] == {"events_written": 4, "events_dropped": 0, "errors": 0, "nonfinite_values": 0}
    assert evs[2]["parent_event_id"] == evs[1]["event_id"]  # the error follows the event written, not its parent
    chk = _check(tmp_path)
    assert chk.problems == []
