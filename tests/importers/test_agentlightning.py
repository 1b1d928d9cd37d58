"""Agent Lightning: the runtime hook on its in-memory tracer/store (round trip, fail-open), our
views consumed by its own adapters, and the ``smoke runtime-hook`` command.

``import agentlightning`` costs seconds: everything that needs it lives in this one module.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import orjson
import pytest

from tests.importers.conftest import lazy_importorskip
from tracebridge.capture.reader import RunDir
from tracebridge.importers.agentlightning.hook import RuntimeHook
from tracebridge.importers.agentlightning.smoke import tiny_agent
from tracebridge.importers.agentlightning.spans import _iso
from tracebridge.schema.validate import check_run

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
agl = lazy_importorskip("agentlightning")


def _events(run_dir):
    return [orjson.loads(x) for x in (run_dir / "events.jsonl").read_bytes().splitlines()]


def test_hook_round_trip_on_the_in_memory_tracer(tmp_path):
    res = RuntimeHook(tmp_path, goal_family="calc", keep_spans=True).run(tiny_agent, {"question": "6*7", "expected": 42})
    assert res.result == "The answer is 42." and res.capture_ok and res.capture_error is None
    assert res.span_kinds == {"llm": 2, "tool": 1, "reward": 1}
    chk = check_run(RunDir(res.run_dir))
    assert chk.schema_valid and chk.lineage_valid, chk.problems
    evs = _events(res.run_dir)
    kinds = [e["event_type"] for e in evs]
    assert kinds == ["planner_input", "worker_action", "worker_tool_call", "worker_tool_result", "worker_action",
                     "env_observation", "worker_output", "episode_end"]
    action, call, result = evs[1], evs[2], evs[3]
    assert action["payload"]["action"] == "tool_call" and action["payload"]["tool"] == "calculator"
    assert action["llm"]["model"] == "scripted-calc" and action["llm"]["response"] == "calculator(6*7)"
    assert json.loads(action["llm"]["rendered_prompt"]) == [{"content": "What is 6*7?", "role": "user"}]
    assert call["parent_event_id"] == action["event_id"] and call["payload"]["args"] == {"expression": "6*7"}
    assert result["payload"]["ok"] is True and result["payload"]["output"] == "42"
    assert evs[5]["labels"] == {"reward": 1.0} and evs[7]["payload"]["success"] is True
    session = RunDir(res.run_dir).read_session()
    assert session["source"]["kind"] == "agentlightning" and session["labels"] == {"reward": 1.0}
    # the same spans, read by Agent Lightning's own adapter, give the calls and the reward
    triplets = agl.TracerTraceToTriplet().adapt([agl.Span.model_validate(s) for s in res.raw_spans])
    assert [t.response["raw_content"][0]["content"] for t in triplets] == ["calculator(6*7)", "The answer is 42."]
    assert triplets[-1].reward == 1.0


def test_hook_is_fail_open(tmp_path, monkeypatch):
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("x")
    res = RuntimeHook(blocked).run(tiny_agent, {"question": "1+1", "expected": 2})  # capture cannot write
    assert res.result == "The answer is 2." and not res.capture_ok and res.capture_error.startswith("write")

    def boom(*a, **k):
        raise RuntimeError("store down")

    with monkeypatch.context() as m:
        m.setattr("agentlightning.InMemoryLightningStore", boom)
        res = RuntimeHook(tmp_path).run(lambda task: task["x"] * 2, {"x": 21})
    assert res.result == 42 and res.capture_error == "setup: RuntimeError: store down"

    def failing(task):
        raise ValueError("agent bug")

    with pytest.raises(ValueError, match="agent bug"):  # the agent's own error is not swallowed
        RuntimeHook(tmp_path / "t").run(failing, {"question": "q"})
    (run,) = list((tmp_path / "t").iterdir())
    evs = _events(run)
    assert [e["event_type"] for e in evs][-2:] == ["episode_error", "episode_end"]
    assert evs[-1]["payload"] == {"success": False, "outcome": "", "failure_class": "ValueError"}


VIEW_ROWS = [
    {"messages": [{"role": "system", "content": "You are the worker."}, {"role": "user", "content": "Step: read"},
                  {"role": "assistant", "content": "", "tool_calls": [
                      {"id": "c1", "type": "function", "function": {"name": "read_file", "arguments": {"path": "n"}}}]},
                  {"role": "tool", "tool_call_id": "c1", "content": "a\nb"},
                  {"role": "assistant", "content": "2 lines"}],
     "tools": [{"type": "function", "function": {"name": "read_file", "description": "Read a file.",
                                                 "parameters": {"type": "object", "properties": {}}}}],
     "meta": {"run_id": "r1", "event_ids": ["r1:5"], "labels": {"feedback": {"score": 2.0}}}},
    {"prompt": [{"role": "system", "content": "You are the verifier."}, {"role": "user", "content": "Progress 1/1"}],
     "chosen": [{"role": "assistant", "content": "verdict: end"}],
     "rejected": [{"role": "assistant", "content": "verdict: continue"}],
     "meta": {"run_id": "r2", "event_ids": ["r2:9"]}},
    {"messages": [{"role": "user", "content": "no assistant turn"}], "meta": {"run_id": "r3"}},
]


def test_agent_lightning_adapters_consume_our_export(tmp_path):
    from tracebridge.importers.agentlightning.formats import export_agentlightning

    views = tmp_path / "views.jsonl"
    views.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in VIEW_ROWS))
    s = export_agentlightning([views], tmp_path / "bundle")
    assert (s.rows_read, s.rows_exported, s.rows_quarantined, s.traces) == (3, 2, 1, 3)
    assert s.quarantined[0].startswith(f"{views}:3: ValueError")
    read = lambda k: [orjson.loads(x) for x in Path(s.files[k]).read_bytes().splitlines()]
    msgs, trips, spans = read("messages"), read("triplets"), read("spans")
    sft = msgs[0]
    assert sft["messages"][0] == {"content": "You are the worker.", "role": "system"}
    assert sft["messages"][2]["tool_calls"][0]["function"] == {"name": "read_file", "arguments": '{"path":"n"}'}
    assert sft["messages"][3] == {"content": "a\nb", "role": "tool", "tool_call_id": "c1"}
    assert sft["messages"][-1] == {"role": "assistant", "content": "2 lines"}
    assert sft["tools"][0]["function"]["name"] == "read_file" and sft["meta"]["run_id"] == "r1"
    assert [m["messages"][-1]["content"] for m in msgs[1:]] == ["verdict: end", "verdict: continue"]
    triplets = [agl.Triplet(**{k: t[k] for k in ("prompt", "response", "reward", "metadata")}) for t in trips]
    assert [t.reward for t in triplets] == [2.0, 1.0, 0.0]
    assert triplets[1].response["raw_content"] == [{"role": "assistant", "content": "verdict: end"}]
    assert trips[0]["metadata"]["tracebridge"]["event_ids"] == ["r1:5"]
    # the spans file alone is enough for Agent Lightning users: its adapters give the same rows
    by_rollout: dict[str, list] = {}
    for sp in spans:
        by_rollout.setdefault(sp["rollout_id"], []).append(agl.Span.model_validate(sp))
    again = [m for ss in by_rollout.values() for m in agl.TraceToMessages().adapt(ss)]
    assert [m["messages"] for m in again] == [m["messages"] for m in msgs]


def test_smoke_runtime_hook_command(tmp_path):
    from typer.testing import CliRunner

    from tracebridge.cli import app

    r = CliRunner().invoke(app, ["smoke", "runtime-hook", "--out", str(tmp_path), "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["ok"] is True and doc["triplets"] == 2 and doc["problems"] == []
    assert (tmp_path / doc["run_id"] / "session.json").is_file()


@pytest.mark.parametrize("exc", [KeyboardInterrupt(), SystemExit(3)])
def test_hook_keeps_the_run_of_an_interrupted_agent(tmp_path, exc):
    def interrupted(task):
        raise exc

    with pytest.raises(type(exc)):
        RuntimeHook(tmp_path).run(interrupted, {"question": "q"})
    (run,) = list(tmp_path.iterdir())
    assert _events(run)[-1]["payload"]["failure_class"] == type(exc).__name__
    assert check_run(RunDir(run)).schema_valid


def test_hook_drops_only_the_event_json_cannot_hold(tmp_path):
    class Mute(Exception):
        def __str__(self):
            raise RuntimeError("no message")

    def agent(task):
        with agl.operation(name="ls") as op:
            op.set_input(path=".")
            op.set_output("caf\udce9.txt")  # an undecodable file name, as os.listdir gives it
        raise Mute()

    with pytest.raises(Mute):
        RuntimeHook(tmp_path).run(agent, {"question": "list"})
    (run,) = list(tmp_path.iterdir())
    chk = check_run(RunDir(run))
    assert chk.complete and chk.schema_valid and chk.lineage_valid, chk.problems
    session = RunDir(run).read_session()
    assert session["capture"]["events_dropped"] == 1 and session["summary"]["failure_class"] == "Mute"


def test_a_tools_result_follows_what_ran_inside_it(tmp_path):
    """Nested ``agl.operation`` spans (a tool that runs another, and emits a message): before, the outer
    tool's result was written right after its call, then the inner tool and the message with their start
    times pushed past the outer end, as if they ran after the outer tool returned."""
    import time

    def agent(task):
        with agl.operation(name="outer") as op:
            op.set_input(q=1)
            time.sleep(0.01)
            with agl.operation(name="inner") as inner:
                inner.set_input(x=2)
                time.sleep(0.01)
                inner.set_output("inner result")
            agl.emit_message("inside outer")
            time.sleep(0.01)
            op.set_output("outer result")
        agl.emit_reward(1.0)
        return "done"

    res = RuntimeHook(tmp_path, keep_spans=True).run(agent, {"question": "q"})
    evs = _events(res.run_dir)
    got = [(e["event_type"], e["payload"].get("tool") or e["payload"].get("output") or e["payload"].get("source"))
           for e in evs[1:-2]]
    assert got == [("worker_tool_call", "outer"), ("worker_tool_call", "inner"), ("worker_tool_result", "inner result"),
                   ("env_observation", "agentlightning.message"), ("worker_tool_result", "outer result"),
                   ("env_observation", "agentlightning.reward")]
    by_id = {e["event_id"]: e for e in evs}
    assert by_id[evs[2]["parent_event_id"]]["payload"]["tool"] == "outer"  # the inner call ran inside the outer
    assert evs[5]["parent_event_id"] == evs[1]["event_id"] and evs[6]["parent_event_id"] == evs[5]["event_id"]
    inner = next(s for s in res.raw_spans if s["attributes"].get("agentlightning.operation.input.x") == 2)
    assert evs[2]["timestamp"] == _iso(inner["start_time"])  # its own start, not the outer tool's end
    chk = check_run(RunDir(res.run_dir))
    assert chk.schema_valid and chk.lineage_valid_events == chk.events
