"""Recorder under an agent that misuses it: odd ``llm_call`` arguments, bad parent ids, values
JSON cannot hold, exceptions leaving the ``with`` block, threads and ``os.fork``. Fail-open means:
nothing raises into the agent, every failure is counted in session.json, and what is written
validates (schema and lineage)."""

from __future__ import annotations

import json
import os
import threading

import numpy as np
import pytest

from tests.conftest import MODEL_STACK, run_racing_threads
from tracebridge.capture.reader import iter_runs
from tracebridge.capture.recorder import CaptureError, Recorder
from tracebridge.curate.redact import capture_redactor
from tracebridge.export.pipeline import export_traces
from tracebridge.schema.validate import check_run


def _rec(root, **kw):
    return Recorder(root, goal="g", model_stack=MODEL_STACK, runtime_config={"max_steps": 1}, **kw)


def _check(root):
    (chk,) = [check_run(r) for r in iter_runs(root)]
    assert chk.complete and chk.schema_valid and chk.lineage_valid and chk.problems == [], chk.problems
    return chk


def _session(run):
    return json.loads((run.run_dir / "session.json").read_text())


def _events(run):
    return [json.loads(x) for x in (run.run_dir / "events.jsonl").read_text().splitlines()]


def test_llm_call_with_unusable_arguments_fails_open(tmp_path):
    with _rec(tmp_path) as run:
        root = run.emit("planner_input", role="planner", payload={"goal": "g"})
        blocks = [run.llm_call("m", "p", params="temperature=0"), run.llm_call("m", {1, object()}),
                  run.llm_call("m", "p", usage=5), run.llm_call("m", "p", tools=[object()])]
        run.emit("planner_output", role="planner", parent=root, payload={"plan": []}, llm=blocks[0])
    assert blocks[:2] == [None] * 2 and blocks[3] is None
    assert blocks[2]["usage"] == {}  # a usage that is no mapping is left out: the call is kept
    assert _session(run)["capture"] == {"events_written": 2, "events_dropped": 0, "errors": 4, "nonfinite_values": 0}
    assert "llm" not in _events(run)[1]  # the event itself is kept
    _check(tmp_path)
    with _rec(tmp_path / "strict", strict=True) as run, pytest.raises(CaptureError, match="llm_call"):
        run.llm_call("m", "p", params="temperature=0")


def test_infinite_usage_is_refused_not_written_as_null(tmp_path):
    with _rec(tmp_path) as run:
        run.emit("planner_input", role="planner", payload={"goal": "g"})
        for usage in ({"cost_usd": float("inf")}, {"latency_ms": float("inf")}):
            run.emit("planner_output", role="planner", payload={"plan": []}, llm=run.llm_call("m", "p", usage=usage))
    assert [e["llm"]["usage"] for e in _events(run)[1:]] == [{}, {}]  # left out by llm_call; the events kept
    assert _session(run)["capture"] == {"events_written": 3, "events_dropped": 0, "errors": 2, "nonfinite_values": 0}
    assert _session(run)["summary"]["cost_usd"] == 0.0
    _check(tmp_path)


def test_parent_that_is_not_an_earlier_event_is_dropped_and_counted(tmp_path):
    with _rec(tmp_path / "other") as other:
        foreign = other.emit("planner_input", role="planner", payload={"goal": "g"})
    with _rec(tmp_path / "t") as run:
        root = run.emit("planner_input", role="planner", payload={"goal": "g"})
        bad = [run.emit("env_observation", role="env", payload={"observation": 1}, parent=p)
               for p in (["x"], "nope", foreign, f"{run.run_id}:000099", f"{run.run_id}:2", root + "0")]
        child = run.emit("env_observation", role="env", payload={"observation": 2}, parent=bad[1])
        run.emit("env_observation", role="env", payload={"observation": 3}, parent=root)
    assert _session(run)["capture"] == {"events_written": 3, "events_dropped": 6, "errors": 6, "nonfinite_values": 0}
    evs = _events(run)
    assert [e["parent_event_id"] for e in evs] == [None, root, root]  # a bad event's child attaches above it
    assert evs[1]["event_id"] == child
    _check(tmp_path / "t")


def test_payload_model_that_cannot_serialise_is_dropped(tmp_path):
    from pydantic import BaseModel, ConfigDict

    class Obs(BaseModel):
        model_config = ConfigDict(arbitrary_types_allowed=True)
        observation: object

    with _rec(tmp_path) as run:
        run.emit("planner_input", role="planner", payload={"goal": "g"})
        run.emit("env_observation", role="env", payload=Obs(observation=object()))
    assert _session(run)["capture"] == {"events_written": 1, "events_dropped": 1, "errors": 1, "nonfinite_values": 0}
    _check(tmp_path)


def test_redacted_capture_keeps_values_only_canonical_json_knows(tmp_path):
    values = [{1, 2}, b"raw", np.int64(3), np.float32(0.5), np.arange(3), {"mail alice.smith@example.com"}]
    with _rec(tmp_path, redactor=capture_redactor()) as run:
        run.emit("planner_input", role="planner", payload={"goal": "g"})
        for v in values:
            run.emit("env_observation", role="env", payload={"observation": v})
    assert _session(run)["capture"] == {"events_written": 7, "events_dropped": 0, "errors": 0, "nonfinite_values": 0}
    assert [e["payload"]["observation"] for e in _events(run)[1:-1]] == [[1, 2], "raw", 3, 0.5, [0, 1, 2]]
    assert "alice" not in (run.run_dir / "events.jsonl").read_text()  # the set was redacted too
    _check(tmp_path)


@pytest.mark.parametrize("redactor", [None, capture_redactor])
def test_undecodable_bytes_in_a_tool_output_are_escaped_not_dropped(tmp_path, redactor):
    """A file name Python decoded with surrogateescape (os.listdir, a subprocess's output) used to
    drop the whole tool result ("surrogates not allowed"), and an llm block whose prompt held one."""
    name = b"r\xe9sum\xe9.txt".decode("utf-8", "surrogateescape")
    with Recorder(tmp_path, goal=f"summarise {name}", model_stack=MODEL_STACK, runtime_config={"max_steps": 1},
                  redactor=redactor() if redactor else None) as run:
        run.emit("planner_input", role="planner", payload={"goal": "g"})
        run.emit("worker_tool_call", role="worker", payload={"call_id": "c1", "tool": "ls", "args": {}})
        run.emit("worker_tool_result", role="worker", payload={"call_id": "c1", "ok": True, "output": [name]},
                 llm=run.llm_call("m", [{"role": "user", "content": f"list: {name}"}], response=name))
    assert _session(run)["capture"] == {"events_written": 3, "events_dropped": 0, "errors": 0, "nonfinite_values": 0}
    result = _events(run)[-1]
    assert result["payload"]["output"] == ["r\\udce9sum\\udce9.txt"]
    assert result["llm"]["response"] == "r\\udce9sum\\udce9.txt" and "udce9" in result["llm"]["rendered_prompt"]
    assert _session(run)["goal"]["text"] == "summarise r\\udce9sum\\udce9.txt"  # session.json written too
    _check(tmp_path)


@pytest.mark.parametrize("redactor", [None, capture_redactor])
def test_undecodable_bytes_in_a_set_a_dataclass_or_a_model_are_escaped_not_dropped(tmp_path, redactor):
    """Escaping reached strings in dicts, lists and tuples only: a set of file names (``set(os.listdir())``),
    a dataclass or a pydantic model holding one dropped the whole event ("str is not valid UTF-8")."""
    import dataclasses

    from pydantic import BaseModel

    @dataclasses.dataclass
    class Found:
        name: str

    class Hit(BaseModel):
        name: str

    name = b"r\xe9sum\xe9.txt".decode("utf-8", "surrogateescape")
    escaped = "r\\udce9sum\\udce9.txt"
    with Recorder(tmp_path, goal="g", model_stack=MODEL_STACK, runtime_config={"max_steps": 1},
                  redactor=redactor() if redactor else None) as run:
        run.emit("planner_input", role="planner", payload={"goal": "g"})
        for value in ({name, "a.txt"}, frozenset([name]), Found(name), Hit(name=name)):
            run.emit("env_observation", role="env", payload={"observation": {"files": value}})
    assert _session(run)["capture"] == {"events_written": 5, "events_dropped": 0, "errors": 0, "nonfinite_values": 0}
    assert [e["payload"]["observation"]["files"] for e in _events(run)[1:]] == [
        ["a.txt", escaped], [escaped], {"name": escaped}, {"name": escaped}]
    _check(tmp_path)


def test_undecodable_bytes_in_llm_params_or_tools_keep_the_call(tmp_path):
    """A stop sequence or a tool schema default holding one lost the whole llm block (None, counted)."""
    name = b"r\xe9sum\xe9.txt".decode("utf-8", "surrogateescape")
    tools = [{"type": "function", "function": {"name": "read", "parameters": {"default": name}}}]
    with Recorder(tmp_path, goal="g", model_stack=MODEL_STACK, runtime_config={"max_steps": 1}) as run:
        run.emit("planner_input", role="planner", payload={"goal": "g"})
        run.emit("worker_action", role="worker", payload={"action": "tool_call", "tool": "read", "args": {}},
                 llm=run.llm_call("m", "hi", params={"stop": [name]}, tools=tools))
    assert _session(run)["capture"] == {"events_written": 2, "events_dropped": 0, "errors": 0, "nonfinite_values": 0}
    llm = _events(run)[-1]["llm"]
    assert llm["params"] == {"stop": ["r\\udce9sum\\udce9.txt"]}
    assert llm["tools"][0]["function"]["parameters"] == {"default": "r\\udce9sum\\udce9.txt"}
    _check(tmp_path)


class _Mute(Exception):
    def __str__(self):
        raise RuntimeError("no message")


@pytest.mark.parametrize("exc", [ValueError("boom"), KeyboardInterrupt(), _Mute(), OSError("bad \udcff path")])
def test_exception_leaving_the_block_is_in_session_json(tmp_path, exc):
    with pytest.raises(type(exc)), _rec(tmp_path) as run:
        run.emit("planner_input", role="planner", payload={"goal": "g"})
        raise exc
    sess = _session(run)
    assert sess["summary"]["success"] is False and sess["summary"]["failure_class"] == type(exc).__name__
    assert sess["capture"] == {"events_written": 3, "events_dropped": 0, "errors": 0, "nonfinite_values": 0}
    error, end = _events(run)[-2:]
    assert error["event_type"] == "episode_error" and error["payload"]["kind"] == type(exc).__name__
    assert end["event_type"] == "episode_end" and end["parent_event_id"] == error["event_id"]
    assert end["payload"] == {"success": False, "outcome": f"crash: {type(exc).__name__}",
                              "failure_class": type(exc).__name__}
    _check(tmp_path)


def test_run_that_crashed_in_the_block_is_exported_as_a_failed_run(tmp_path):
    """The recorder closed it: the export takes it as a failed run (its rows say so), it does not
    quarantine it as ``incomplete_run`` ("never reached episode_end")."""
    with pytest.raises(RuntimeError), _rec(tmp_path / "traces") as run:
        pi = run.emit("planner_input", role="planner", payload={"goal": "g", "tool_mask": ["calc"]})
        run.emit("planner_output", role="planner", parent=pi,
                 payload={"plan": [{"index": 0, "description": "add", "tool": "calc"}]})
        raise RuntimeError("agent crashed")
    res = export_traces(tmp_path / "traces", tmp_path / "bundles")
    assert res.report["runs"]["quarantined"] == 0 and res.report["runs"]["exported"] == 1
    (row,) = [json.loads(x) for x in (res.path / "views/planner_sft/train.jsonl").read_text().splitlines()]
    assert row["meta"]["run_id"] == run.run_id and row["meta"]["labels"]["run_success"] is False


def test_exception_after_episode_end_keeps_the_recorded_outcome(tmp_path):
    with pytest.raises(ValueError), _rec(tmp_path) as run:
        run.emit("planner_input", role="planner", payload={"goal": "g"})
        run.emit("episode_end", role="orchestrator", payload={"success": True})
        raise ValueError("after the end")
    assert _session(run)["summary"]["success"] is True


def test_many_threads_share_one_recorder(tmp_path):
    with _rec(tmp_path, fsync_interval_s=None) as run:
        run.emit("planner_input", role="planner", payload={"goal": "g"})

        def work(k):
            for i in range(1500):
                run.emit("env_observation", role="env", payload={"observation": {"k": k, "i": i}})

        run_racing_threads(work, 6)
    evs = _events(run)
    assert len(evs) == 9001 and len({e["event_id"] for e in evs}) == 9001
    assert _session(run)["capture"]["events_written"] == 9001  # no count lost
    assert [e["timestamp"] for e in evs] == sorted(e["timestamp"] for e in evs)
    _check(tmp_path)


def test_threads_default_parents_are_their_own_previous_events(tmp_path):
    """Two workers run plan steps in threads of one run, each emitting action → call → result with the
    default parent. The default used to be the run's previous event, whichever thread wrote it: a tool
    call hung under the other thread's action, and the worker row of "read b.txt" called a.txt."""
    barrier = threading.Barrier(2)
    with _rec(tmp_path / "traces") as run:
        pi = run.emit("planner_input", role="planner", payload={"goal": "read both", "tool_mask": ["read_file"]})
        po = run.emit("planner_output", role="planner", parent=pi,
                      payload={"plan": [{"index": i, "description": f"read {p}"} for i, p in enumerate("ab")]})

        def step(i, path):
            run.emit("worker_input", role="worker", parent=po,
                     payload={"plan_step": {"index": i, "description": f"read {path}"}, "allowed_tools": ["read_file"]})
            for etype, body in [("worker_action", {"action": "tool_call", "tool": "read_file", "args": {"path": path}}),
                                ("worker_tool_call", {"call_id": f"c{i}", "tool": "read_file", "args": {"path": path}}),
                                ("worker_tool_result", {"call_id": f"c{i}", "ok": True, "output": path.upper()}),
                                ("worker_output", {"result": path.upper()})]:
                barrier.wait()  # the two threads alternate: each event lands between two of the other's
                if etype != "worker_output" or i == 0:
                    run.emit(etype, role="worker", payload=body)
                barrier.wait()
                if etype == "worker_output" and i == 1:
                    run.emit(etype, role="worker", payload=body)

        threads = [threading.Thread(target=step, args=(i, p)) for i, p in enumerate(["a.txt", "b.txt"])]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        run.emit("episode_end", role="orchestrator", payload={"success": True})
    evs = {e["event_id"]: e for e in _events(run)}
    for out in (e for e in evs.values() if e["event_type"] == "worker_output"):
        chain = [out]
        while chain[-1]["event_type"] != "worker_input":
            chain.append(evs[chain[-1]["parent_event_id"]])
        assert [e["event_type"] for e in chain] == ["worker_output", "worker_tool_result", "worker_tool_call",
                                                   "worker_action", "worker_input"]
        assert len({json.dumps(e["payload"]).lower().count("a.txt") > 0 for e in chain}) == 1  # one thread's
    _check(tmp_path / "traces")
    rows = export_traces(tmp_path / "traces", tmp_path / "b").path / "views/worker_sft/train.jsonl"
    got = {json.loads(r)["messages"][1]["content"].splitlines()[0]:
           json.loads(json.loads(r)["messages"][-1]["tool_calls"][0]["function"]["arguments"])["path"]
           for r in rows.read_text().splitlines()}
    assert got == {"Step: read a.txt": "a.txt", "Step: read b.txt": "b.txt"}


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_forked_child_does_not_write_into_the_parents_run(tmp_path):
    with _rec(tmp_path, fsync_interval_s=None) as run:
        run.emit("planner_input", role="planner", payload={"goal": "g"})
        pid = os.fork()
        if pid == 0:  # the child emits, then leaves the block through an exception, then exits
            code = 1
            try:
                with run:
                    run.emit("env_observation", role="env", payload={"observation": "child"})
                    raise SystemExit(0)
            except SystemExit:
                code = 0
            finally:
                os._exit(code)
        assert os.waitpid(pid, 0)[1] == 0
        run.emit("env_observation", role="env", payload={"observation": "parent"})
    evs = _events(run)
    assert [e["payload"].get("observation") for e in evs] == [None, "parent"]
    assert _session(run)["capture"] == {"events_written": 2, "events_dropped": 0, "errors": 0, "nonfinite_values": 0}
    _check(tmp_path)


def test_nan_and_infinity_are_kept_as_strings_counted_and_reported(tmp_path):
    from tracebridge.schema.events import PlannerInput
    from tracebridge.schema.validate import validate_root

    stack = {**MODEL_STACK, "planner": {"model": "p", "params": {"temperature": float("nan")}}}
    with Recorder(tmp_path, goal="g", model_stack=stack, runtime_config={"max_steps": 1}) as run:
        root = run.emit("planner_input", role="planner", payload=PlannerInput(goal="g", observation=float("inf")))
        run.emit("env_observation", role="env", parent=root, payload={
            "observation": {"score": float("nan"), "low": -float("inf"), "arr": np.array([1.0, np.nan]),
                            "f32": np.float32("inf"), "ok": 0.5, "none": None}})
    evs = _events(run)
    assert evs[0]["payload"]["observation"] == "Infinity"
    assert evs[1]["payload"]["observation"] == {"score": "NaN", "low": "-Infinity", "arr": [1.0, "NaN"],
                                               "f32": "Infinity", "ok": 0.5, "none": None}
    sess = _session(run)
    assert sess["model_stack"]["planner"]["params"] == {"temperature": "NaN"}
    assert sess["capture"] == {"events_written": 2, "events_dropped": 0, "errors": 0, "nonfinite_values": 6}
    _check(tmp_path)  # strings where numbers were: the run still validates
    rep = validate_root(tmp_path)
    assert (rep.nonfinite_values, rep.runs_with_nonfinite_values, rep.problems_by_kind["nonfinite"]) == (6, 1, 1)
    assert rep.passed  # kept, so not judged; but listed
    assert any("capture.nonfinite_values: 6 NaN/infinite float(s)" in p for p in rep.problems)


@pytest.mark.parametrize(("kw", "named"), [
    ({"model_stack": {"planner": "gpt-4", "worker": {"model": "w"}, "verifier": {"model": "v"}}},
     "Recorder(model_stack=...): model_stack.planner: Input should be a valid dictionary"),
    ({"model_stack": {"planner": {"model": "p"}}}, "model_stack.worker: Field required (got {'planner'"),
    ({"model_stack": {**MODEL_STACK, "verifier": {"model": "v", "params": {"tokenizer": object()}}}},
     "model_stack.verifier.params.tokenizer: object is not JSON"),
    ({"runtime_config": {"max_steps": 0}}, "runtime_config.max_steps: Input should be greater than or equal to 1"),
    ({"tools": [{"fn": print}]}, "Recorder(tools=...): tools[0].fn: builtin_function_or_method is not JSON"),
    ({"run_id": 7}, "Recorder(run_id=...): int 7 is not a str"),
])
def test_bad_argument_fails_at_construction_naming_the_field(tmp_path, kw, named):
    from tracebridge.capture.recorder import RecorderArgumentError

    args = {"goal": "g", "model_stack": MODEL_STACK, "runtime_config": {"max_steps": 1}, **kw}
    with pytest.raises(RecorderArgumentError, match="expected") as exc:
        Recorder(tmp_path, **args)
    assert named in str(exc.value) and isinstance(exc.value, ValueError)
    assert list(tmp_path.iterdir()) == []  # before the run: nothing written

