"""Recorder under a careless or hostile integration: values JSON cannot hold, lines longer than the reader
takes, wrong types where the schema wants a role, step or event type, emits after close, two recorders on one
run folder, run ids that are paths, a trace root that is a file, threads, Ctrl-C mid-emit. Strict mode names
the field and value; fail-open counts it; either way nothing the reader refuses and no partial line is
written."""

from __future__ import annotations

import datetime as dt
import errno
import json
import logging
import os
import uuid
from pathlib import Path

import numpy as np
import pytest
from pydantic import BaseModel

from tests.conftest import MODEL_STACK, run_racing_threads
from tracebridge.capture.problems import open_problem
from tracebridge.capture.reader import MAX_LINE_BYTES, RunDir, iter_lines
from tracebridge.capture.recorder import CaptureError, Recorder, RecorderArgumentError
from tracebridge.schema.events import PlanStep
from tracebridge.schema.validate import check_run


def _rec(root, **kw):
    return Recorder(root, goal="g", model_stack=MODEL_STACK, runtime_config={"max_steps": 1}, **kw)


def _lines(run):
    """The run's events as the reader reads them: every line whole, parsed and schema-valid."""
    raw = (run.run_dir / "events.jsonl").read_bytes()
    assert raw == b"" or raw.endswith(b"\n")  # no partial line at the end
    lines = list(iter_lines(run.run_dir / "events.jsonl"))
    assert [x.error for x in lines if x.error] == []
    return [x.obj for x in lines]


def _valid(run):
    chk = check_run(RunDir(run.run_dir))
    assert chk.complete and chk.schema_valid and chk.lineage_valid and chk.problems == [], chk.problems
    return json.loads((run.run_dir / "session.json").read_text())


class Obj:
    pass


_CYCLE: list = []
_CYCLE.append(_CYCLE)
_DEEP: list = [1]
for _ in range(300):
    _DEEP = [_DEEP]


@pytest.mark.parametrize(("value", "written"), [
    (b"\xff\x00raw", "$bytes_b64:/wByYXc="),  # not UTF-8: base64, marked (was "\\xff" escapes, before that U+FFFD)
    ({3, 1, 2}, [1, 2, 3]),
    (dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC), "2026-01-02T03:04:05+00:00"),
    (dt.date(2026, 1, 2), "2026-01-02"),
    (uuid.UUID(int=1), "00000000-0000-0000-0000-000000000001"),
    ({1: "int key"}, {"1": "int key"}),
    ((1, "a"), [1, "a"]),
])
def test_values_json_can_stand_for_are_written_as_json(tmp_path, value, written):
    with _rec(tmp_path, strict=True) as run:
        run.emit("planner_input", role="planner", payload={"goal": "g"})
        run.emit("env_observation", role="env", payload={"observation": {"v": value}})
    assert _lines(run)[-1]["payload"]["observation"] == {"v": written}
    _valid(run)


@pytest.mark.parametrize(("value", "named"), [
    (Obj(), "env_observation.payload.observation.v: Obj is not JSON: <"),
    ({(1, 2): 3}, "env_observation.payload.observation.v: key tuple (1, 2) is not a str"),
    (2 ** 70, "env_observation.payload.observation.v: int 1180591620717411303424 is outside JSON's 64-bit"),
    (1j, "env_observation.payload.observation.v: complex is not JSON: 1j"),
    (_CYCLE, "env_observation.payload.observation.v[0]: list contains itself"),
    ((i for i in range(2)), "env_observation.payload.observation.v: generator is not JSON"),
    (_DEEP, "[0][0]: nested deeper than 254 levels"),
])
def test_value_json_cannot_hold_is_refused_naming_its_path(tmp_path, value, named):
    """The error used to be orjson's "Type is not JSON serializable: Obj", naming neither field nor value."""
    with _rec(tmp_path / "strict", strict=True) as run:
        run.emit("planner_input", role="planner", payload={"goal": "g"})
        with pytest.raises(CaptureError) as err:
            run.emit("env_observation", role="env", payload={"observation": {"ok": 1, "v": value}})
    assert named in str(err.value)
    with _rec(tmp_path / "open") as run:
        root = run.emit("planner_input", role="planner", payload={"goal": "g"})
        run.emit("env_observation", role="env", payload={"observation": {"v": value}})
        run.emit("env_observation", role="env", payload={"observation": "after"})
    assert [e["parent_event_id"] for e in _lines(run)] == [None, root]
    assert _valid(run)["capture"] == {"events_written": 2, "events_dropped": 1, "errors": 1, "nonfinite_values": 0}


def test_line_longer_than_the_reader_takes_is_refused_and_the_longest_one_it_takes_is_written(tmp_path):
    """A line over MAX_LINE_BYTES was written and then skipped by every reader ("longer than max_line_bytes")."""
    with _rec(tmp_path, fsync_interval_s=None) as run:
        root = run.emit("planner_input", role="planner", payload={"goal": "g"})
        run.emit("env_observation", role="env", parent=root, payload={"observation": ""})
        pad = MAX_LINE_BYTES - (len((run.run_dir / "events.jsonl").read_bytes().split(b"\n")[1]))
        run.emit("env_observation", role="env", parent=root, payload={"observation": "x" * pad})
        run.emit("env_observation", role="env", parent=root, payload={"observation": "x" * (pad + 1)})
        run.strict = True
        with pytest.raises(CaptureError) as err:
            run.emit("env_observation", role="env", parent=root, payload={"observation": "x" * (pad + 1)})
        run.strict = False
    assert f"event line of {MAX_LINE_BYTES + 1} bytes is longer than the reader's MAX_LINE_BYTES={MAX_LINE_BYTES}" \
        in str(err.value) and f"largest field payload.observation ({pad + 3} bytes)" in str(err.value)
    evs = _lines(run)
    assert [len(e["payload"]["observation"]) for e in evs[1:]] == [0, pad]  # the longest line the reader takes
    assert _valid(run)["capture"]["events_dropped"] == 2


@pytest.mark.parametrize(("emit", "step", "named"), [
    ({"event_type": 5}, 0, "event_type: int 5 is not an event type; expected one of planner_input"),
    ({"event_type": "env_obs"}, 0, "event_type: str 'env_obs' is not an event type"),
    ({"event_type": None}, 0, "event_type: NoneType None is not an event type"),
    ({"role": "critic"}, 0, ("env_observation.role: Input should be 'planner', 'worker', 'verifier', 'orchestrator', "
                             "'env' or 'user' (got 'critic')")),
    ({"role": 3}, 0, "env_observation.role: Input should be 'planner'"),
    ({"payload": [1]}, 0, "env_observation.payload: Input should be a valid dictionary (got [1])"),
    ({"payload": {"observation": 1, "extra": 2}}, 0, "env_observation.payload.extra: Extra inputs are not permitted"),
    ({"labels": ["x"]}, 0, "env_observation.labels: Input should be a valid dictionary (got ['x'])"),
    ({}, "3", "env_observation.step: Input should be a valid integer (got '3')"),
    ({}, True, "env_observation.step: Input should be a valid integer (got True)"),
    ({}, 1.5, "env_observation.step: Input should be a valid integer (got 1.5)"),
    ({}, -1, "env_observation.step: Input should be greater than or equal to 0 (got -1)"),
    ({"event_type": "planner_output", "role": "planner", "payload": {"plan": [{"index": "0", "description": "d"}]}},
     0, "planner_output.payload.plan.0.index: Input should be a valid integer (got '0')"),
    ({"event_type": "verifier_output", "role": "verifier", "payload": {"verdict": "end", "confidence": "0.9"}},
     0, "verifier_output.payload.confidence: Input should be a valid number (got '0.9')"),
])
def test_wrong_type_is_refused_naming_field_and_value(tmp_path, emit, step, named):
    """The lax models took a step of "3" or True, an index of "0", and the recorder wrote them as given:
    lines ``tracebridge validate`` then refused (it checks files strictly), the run quarantined."""
    kw = {"event_type": "env_observation", "role": "env", "payload": {"observation": 1}, **emit}
    with _rec(tmp_path / "strict", strict=True) as run:
        run.emit("planner_input", role="planner", payload={"goal": "g"})
        run.step = step
        with pytest.raises(CaptureError) as err:
            run.emit(kw.pop("event_type"), **kw)
        run.step = 0
    assert named in str(err.value) and "validation error" not in str(err.value)
    assert len(_lines(run)) == 1
    _valid(run)


@pytest.mark.parametrize("step", ["3", -1, None, True])
def test_step_left_wrong_at_close_still_writes_session_json(tmp_path, step):
    """``summary.steps`` was ``step + 1``: "3" raised at close and the run had no session.json (incomplete)."""
    with _rec(tmp_path) as run:
        run.emit("planner_input", role="planner", payload={"goal": "g"})
        run.next_step()
        run.emit("env_observation", role="env", payload={"observation": 1})
        run.step = step
        run.emit("env_observation", role="env", payload={"observation": 2})
    sess = _valid(run)
    assert sess["summary"]["steps"] == 2 and sess["capture"]["events_dropped"] == 1 and sess["capture"]["errors"] == 1


def test_values_the_reader_reads_as_valid_are_still_written(tmp_path):
    """The strict check judges what the reader reads: a tuple is written as a list, a numpy int as a number, a
    model as its fields, a float field may hold an int."""
    with _rec(tmp_path, strict=True) as run:
        run.emit("planner_input", role="planner", payload={"goal": "g", "tool_mask": ("read", "sum")})
        run.step = np.int64(1)
        run.emit("planner_output", role="planner", payload={"plan": [PlanStep(index=0, description="d")],
                                                            "confidence": 1})
    evs = _lines(run)
    assert evs[0]["payload"]["tool_mask"] == ["read", "sum"] and evs[1]["step"] == 1
    assert evs[1]["payload"]["plan"] == [{"index": 0, "description": "d", "tool": None, "args": None}]
    _valid(run)


def test_emit_before_open_after_close_and_second_open_are_refused_clearly(tmp_path, caplog):
    run = _rec(tmp_path, strict=True)
    with pytest.raises(CaptureError, match=r"is not open: it was never opened \(use `with Recorder"):
        run.emit("planner_input", role="planner", payload={"goal": "g"})
    run.open()
    with pytest.raises(CaptureError, match="was opened already; a Recorder records one run"):
        run.open()
    run.emit("planner_input", role="planner", payload={"goal": "g"})
    run.close()
    session = (run.run_dir / "session.json").read_bytes()
    run.close()  # a second close does nothing
    with pytest.raises(CaptureError, match=r"is not open: it was closed \(emit after close\(\)\); session.json does "
                                           r"not count this event"):
        run.emit("episode_end", role="orchestrator", payload={"success": True})
    assert (run.run_dir / "session.json").read_bytes() == session and len(_lines(run)) == 1
    run.strict = False
    caplog.clear()
    run.emit("episode_end", role="orchestrator", payload={"success": True})  # fail-open: logged, though session is out
    assert any("emit after close()" in r.message for r in caplog.records)
    assert (run.run_dir / "session.json").read_bytes() == session and len(_lines(run)) == 1


def test_close_without_any_event_says_the_run_will_fail_validation(tmp_path, caplog):
    with caplog.at_level(logging.WARNING), _rec(tmp_path) as run:
        pass
    assert any("closed without any event written" in r.message and "no_events" in r.message for r in caplog.records)
    assert json.loads((run.run_dir / "session.json").read_text())["capture"]["events_written"] == 0
    assert [p.kind for p in check_run(RunDir(run.run_dir)).problems] == ["empty"]  # what validate says too


def test_two_recorders_on_one_run_folder_never_share_it(tmp_path):
    with _rec(tmp_path, run_id="same", fsync_interval_s=None) as first:
        first.emit("planner_input", role="planner", payload={"goal": "first"})
        with pytest.raises(CaptureError, match="run folder .*same exists already: another recorder has"):
            _rec(tmp_path, run_id="same", strict=True).open()
        with _rec(tmp_path, run_id="same") as second:  # fail-open: its events go nowhere, counted in it
            second.emit("planner_input", role="planner", payload={"goal": "second"})
        first.emit("episode_end", role="orchestrator", payload={"success": True})
    assert [e["payload"].get("goal") for e in _lines(first)] == ["first", None]
    assert _valid(first)["capture"] == {"events_written": 2, "events_dropped": 0, "errors": 0, "nonfinite_values": 0}
    assert (second.stats.events_written, second.stats.events_dropped) == (0, 1)


@pytest.mark.parametrize(("run_id", "named"), [
    ("../escape", "holds a path separator"), ("a/b", "holds a path separator"), ("/abs", "holds a path separator"),
    ("a\\b", "holds a path separator"), (".", "names the trace root"), ("..", "names the trace root"),
    (".hidden", "readers skip hidden folders"), ("a\nb", "control character"), ("a\x00b", "control character"),
    ("a\udcffb", "lone surrogates"), ("é" * 128, "is 256 bytes long"), (0, "int 0 is not a str"),
    ([], "list [] is not a str"),
])
def test_run_id_that_is_not_one_folder_name_is_refused(tmp_path, run_id, named):
    """``../escape`` wrote the run beside the trace root, ``/abs`` at the file system's root, ``a/b`` in a
    folder no reader lists, ``.hidden`` where readers skip it."""
    root = tmp_path / "traces"
    with pytest.raises(RecorderArgumentError, match="Recorder\\(run_id=") as err:
        _rec(root, run_id=run_id)
    assert named in str(err.value)
    assert list(tmp_path.iterdir()) == []  # nothing written, inside the root or beside it


@pytest.mark.parametrize("run_id", ["a:b", "run 1", "é" * 127, "x" * 255])
def test_run_id_that_is_one_folder_name_is_taken(tmp_path, run_id):
    with _rec(tmp_path, run_id=run_id, strict=True) as run:
        run.emit("planner_input", role="planner", payload={"goal": "g"})
    assert run.run_dir.parent == tmp_path and run.run_dir.name == run_id
    _valid(run)


def test_trace_root_that_is_a_file_or_not_a_path_is_named(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    for root in (blocker, blocker / "sub"):
        with pytest.raises(CaptureError, match="a path above it is a file, not a folder"):
            _rec(root, strict=True).open()
    for root in (None, 5, ""):
        with pytest.raises(RecorderArgumentError, match=f"Recorder\\(root=...\\): {type(root).__name__} .* is not a path"):
            _rec(root)
    assert blocker.read_text() == "x"


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root writes into any folder")
def test_trace_root_that_is_not_writable_is_named(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir(mode=0o555)
    with pytest.raises(CaptureError, match="the trace root .*ro is not writable"):
        _rec(ro, strict=True).open()


@pytest.mark.parametrize(("err", "named"), [
    (errno.EACCES, "the trace root /t is not writable (Permission denied)"),
    (errno.EROFS, "the trace root /t is not writable (Read-only file system)"),
    (errno.ENOSPC, "cannot create the run folder /t/r: [Errno 28] No space left on device"),
])
def test_open_error_words_for_what_root_cannot_provoke_here(err, named):
    """The tests run as root, which writes into any folder: the words for EACCES/EROFS are checked directly."""
    assert named in open_problem(OSError(err, os.strerror(err)), Path("/t/r"))


@pytest.mark.parametrize(("labels", "named"), [
    ({"a": Obj()}, "labels.a: Obj is not JSON"), ("x", "str 'x' is not a dict"), ({1: 2}, "labels: key int 1 is not a str"),
])
def test_run_labels_session_json_cannot_hold_are_refused_at_construction(tmp_path, labels, named):
    """Such labels failed at close: no session.json, so the run was reported incomplete (or abandoned)."""
    with pytest.raises(RecorderArgumentError, match="Recorder\\(labels=...\\)") as err:
        _rec(tmp_path, labels=labels)
    assert named in str(err.value)


def test_threads_emitting_and_stepping_keep_lines_whole_and_order_consistent(tmp_path):
    with _rec(tmp_path, fsync_interval_s=None) as run:
        run.emit("planner_input", role="planner", payload={"goal": "g"})

        def work(k):
            for i in range(300):
                if i % 50 == 0:
                    run.next_step()
                run.emit("env_observation", role="env", payload={"observation": {"k": k, "i": i,
                                                                                 "pad": "y" * (i * 30)}})

        run_racing_threads(work, 4)
    evs = _lines(run)  # every line whole: none glued to or torn by another thread's
    assert len(evs) == 1201
    seqs = [int(e["event_id"].rpartition(":")[2]) for e in evs]
    assert seqs == list(range(1, 1202))  # ids in file order
    assert [e["step"] for e in evs] == sorted(e["step"] for e in evs) and evs[-1]["step"] == 24
    for k in range(4):  # each thread's events in its own order
        assert [e["payload"]["observation"]["i"] for e in evs[1:] if e["payload"]["observation"]["k"] == k] == \
            list(range(300))
    assert _valid(run)["summary"]["steps"] == 25


class _CtrlC(BaseModel):
    observation: int = 1

    def model_dump(self, **kw):
        raise KeyboardInterrupt


def test_ctrl_c_mid_emit_ends_the_run_abnormally_with_whole_lines(tmp_path):
    with pytest.raises(KeyboardInterrupt), _rec(tmp_path) as run:
        run.emit("planner_input", role="planner", payload={"goal": "g"})
        run.emit("env_observation", role="env", payload=_CtrlC())
    sess = _valid(run)
    assert sess["summary"]["success"] is False and sess["summary"]["failure_class"] == "KeyboardInterrupt"
    assert sess["capture"]["events_dropped"] == 1  # the interrupted event, counted (was neither written nor dropped)
    assert [e["event_type"] for e in _lines(run)] == ["planner_input", "episode_error", "episode_end"]
    run.emit("env_observation", role="env", payload={"observation": 1})  # after: dropped, nothing raised
    assert len(_lines(run)) == 3
