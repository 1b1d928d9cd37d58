"""Tool schemas of worker rows (``tracebridge.export.tools``) for runs a runtime recorded itself: the
schemas its model calls were offered (``Recorder.llm_call(tools=...)``) reach the rows. They used to be
hashed only, and the rows carried schemas inferred from the call arguments (a made-up description, no
parameters for a tool the run offered but did not call)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import MODEL_STACK
from tracebridge.capture.recorder import Recorder
from tracebridge.export.pipeline import export_traces

TOOLS = [
    {"type": "function", "function": {"name": "read_file", "description": "Read a text file",
                                      "parameters": {"type": "object", "properties": {"path": {"type": "string"}},
                                                     "required": ["path"]}}},
    {"type": "function", "function": {"name": "calc", "description": "Evaluate arithmetic",
                                      "parameters": {"type": "object", "properties": {"expr": {"type": "string"}},
                                                     "required": ["expr"]}}},
]


def _record(root: Path, recorder_tools: list | None) -> str:
    with Recorder(root, goal={"text": "add 1 and 2", "family": "calc"}, model_stack=MODEL_STACK,
                  runtime_config={"max_steps": 2}, tools=recorder_tools, strict=True) as run:
        pi = run.emit("planner_input", role="planner", payload={"goal": "add", "tool_mask": ["read_file", "calc"]})
        po = run.emit("planner_output", role="planner", parent=pi,
                      payload={"plan": [{"index": 0, "description": "add", "tool": "calc"}]})
        wi = run.emit("worker_input", role="worker", parent=po,
                      payload={"plan_step": {"index": 0, "description": "add", "tool": "calc"},
                               "allowed_tools": ["read_file", "calc"]})
        parent = wi
        for k, expr in enumerate(["1 +", "1 + 2"]):
            act = run.emit("worker_action", role="worker", parent=parent,
                           payload={"action": "tool_call", "tool": "calc", "args": {"expr": expr}},
                           llm=run.llm_call("m", [{"role": "user", "content": "add"}], tools=TOOLS, response="call"))
            call = run.emit("worker_tool_call", role="worker", parent=act,
                            payload={"call_id": f"c{k}", "tool": "calc", "args": {"expr": expr}})
            ok = k == 1
            parent = run.emit("worker_tool_result", role="worker", parent=call,
                              payload={"call_id": f"c{k}", "ok": ok, "output": 3 if ok else None,
                                       "error": None if ok else {"kind": "bad_args", "message": "syntax"}})
        wo = run.emit("worker_output", role="worker", parent=parent, payload={"result": 3})
        run.emit("episode_end", role="orchestrator", parent=wo, payload={"success": True})
    return run.run_id


def _rows(path: Path) -> list[dict]:
    return [json.loads(x) for x in (path / "views/worker_sft/train.jsonl").read_text().splitlines()]


def test_the_schemas_the_calls_were_offered_reach_the_worker_rows(tmp_path: Path) -> None:
    run_id = _record(tmp_path / "traces", TOOLS)
    calls = [json.loads(x).get("llm") for x in (tmp_path / "traces" / run_id / "events.jsonl").read_text().splitlines()]
    assert [c.get("tools") for c in calls if c] == [TOOLS, None]  # once per run and toolset
    rows = _rows(export_traces(tmp_path / "traces", tmp_path / "b").path)
    assert [json.loads(r["tools"]) for r in rows] == [TOOLS] * 2
    assert {r["meta"]["labels"]["tool_source"] for r in rows} == {"recorded"}


def test_recorded_schemas_are_used_by_name_when_the_recorder_was_given_no_toolset(tmp_path: Path) -> None:
    _record(tmp_path / "traces", None)  # Recorder(tools=None): the run's toolset_hash is of []
    (row, _) = _rows(export_traces(tmp_path / "traces", tmp_path / "b").path)
    assert json.loads(row["tools"]) == TOOLS and row["meta"]["labels"]["tool_source"] == "recorded"


def test_a_schemas_file_of_another_shape_is_a_located_error(tmp_path: Path) -> None:
    """A JSON object, or a list of tool names, ended the export with a KeyError or AttributeError traceback."""
    import pytest

    from tracebridge.export.config import ToolsConfig
    from tracebridge.export.tools import ToolRegistry

    cases = {'{"tools": []}': ": a dict, not a JSON list of tool schemas",
             '["read_file"]': '[0]: "read_file" is no tool schema',
             json.dumps([TOOLS, ["calc"]]): '[1][0]: "calc" is no tool schema'}
    for i, (text, message) in enumerate(cases.items()):
        path = tmp_path / f"tools{i}.json"
        path.write_text(text)
        with pytest.raises(ValueError) as err:
            ToolRegistry(ToolsConfig(schemas_file=str(path)))
        assert str(err.value).startswith(f"tools.schemas_file={path}{message}"), str(err.value)
    path.write_text(json.dumps([TOOLS, TOOLS[:1]]))  # a list of lists is still a file of several toolsets
    assert ToolRegistry(ToolsConfig(schemas_file=str(path)))._by_name.keys() == {"read_file", "calc"}
