"""Trace files are checked with strict types: a hand-edited ``"ok": "false"`` is a located schema
problem, not a success (the views read the JSON, where a non-empty string is true)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import record_sample_run
from tracebridge.capture.reader import RunDir
from tracebridge.schema.strict import validate_file_event, validate_file_session
from tracebridge.schema.validate import check_run
from tracebridge.testing.mutate import edit_event


def _edit_session(run: Path, fn: Any) -> None:
    sess = json.loads((run / "session.json").read_text())
    fn(sess)
    (run / "session.json").write_text(json.dumps(sess))


@pytest.mark.parametrize("event_type, field, edit", [
    ("worker_tool_result", "payload.ok", lambda ev: ev["payload"].update(ok="false")),
    ("worker_tool_result", "payload.ok", lambda ev: ev["payload"].update(ok=0)),
    ("worker_tool_call", "step", lambda ev: ev.update(step="1")),
    ("worker_tool_call", "step", lambda ev: ev.update(step=1.0)),
    ("worker_tool_call", "step", lambda ev: ev.update(step=True)),
    ("planner_output", "payload.confidence", lambda ev: ev["payload"].update(confidence="0.9")),
    ("episode_end", "payload.success", lambda ev: ev["payload"].update(success="yes")),
    ("planner_input", "root", lambda ev: ev.update(root="true")),
])
def test_a_value_of_the_wrong_json_type_is_a_located_schema_problem(tmp_path: Path, event_type: str,
                                                                   field: str, edit: Any) -> None:
    run = tmp_path / record_sample_run(tmp_path)
    line = edit_event(run, event_type, edit)
    chk = check_run(RunDir(run))
    assert not chk.schema_valid
    assert [(p.line, p.field, p.kind) for p in chk.problems if p.kind == "schema"] == [(line, field, "schema")]


@pytest.mark.parametrize("field, edit", [
    ("summary.success", lambda s: s["summary"].update(success="yes")),
    ("summary.steps", lambda s: s["summary"].update(steps="2")),
    ("runtime_config.max_steps", lambda s: s["runtime_config"].update(max_steps=4.0)),
])
def test_a_session_value_of_the_wrong_json_type_is_a_located_schema_problem(tmp_path: Path, field: str,
                                                                           edit: Any) -> None:
    run = tmp_path / record_sample_run(tmp_path)
    _edit_session(run, edit)
    chk = check_run(RunDir(run))
    assert not chk.session_valid
    assert [(p.file, p.field) for p in chk.problems] == [(str(run / "session.json"), field)]


def test_json_values_the_schema_takes_stay_valid(tmp_path: Path) -> None:
    """An error kind is a string in JSON (an enum in the model); an integer cost is a number."""
    run = tmp_path / record_sample_run(tmp_path)
    edit_event(run, "planner_output", lambda ev: ev["llm"]["usage"].update(cost_usd=1))
    chk = check_run(RunDir(run))
    assert chk.schema_valid and chk.problems == []
    events = [json.loads(line) for line in (run / "events.jsonl").read_text().splitlines()]
    assert any(ev["payload"].get("error", {}).get("kind") == "not_found" for ev in events)
    for ev in events:
        validate_file_event(ev)
    validate_file_session(json.loads((run / "session.json").read_text()))
