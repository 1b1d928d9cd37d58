"""The report's ``views.tool_schemas``: exported runs by the ``labels.tool_source`` their rows carry, so
an Agent Lightning run whose calls recorded their schemas counts as ``recorded``, not as the run-level
fallback (``inferred``) its rows never used."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import pytest

from tracebridge.export.pipeline import export_traces
from tracebridge.export.report import Tally

SPANS = Path(__file__).resolve().parents[1] / "data" / "agentlightning" / "agentops_openai_spans.jsonl"


def _row(source: str | None) -> dict[str, Any]:
    return {"meta": {"labels": {} if source is None else {"tool_source": source}}}


def test_recorded_schemas_count_as_recorded_in_the_report(tmp_path: Path) -> None:
    pytest.importorskip("agentlightning")
    from tracebridge.importers.agentlightning.importer import import_agentlightning

    assert import_agentlightning([SPANS], tmp_path / "t").rollouts_imported == 1
    res = export_traces(tmp_path / "t", tmp_path / "b")
    rows = [json.loads(line) for line in (res.path / "views" / "worker_sft" / "train.jsonl").read_text().splitlines()]
    assert [r["meta"]["labels"]["tool_source"] for r in rows] == ["recorded", "recorded"]
    assert res.report["views"]["tool_schemas"] == {"recorded": 1}
    assert json.loads((res.path / "report.json").read_text())["views"]["tool_schemas"] == {"recorded": 1}


def test_a_run_counts_under_each_source_its_rows_carry_once() -> None:
    t = Tally()
    t.add_rows({"worker_sft": [_row("recorded"), _row("recorded"), _row("inferred")],
                "worker_recovery_cases/sft": [_row("recorded")]})  # a mixed run: once under each
    t.add_rows({"worker_sft": [_row("toolset_hash")], "planner_sft": [_row(None)]})
    t.add_rows({"planner_sft": [_row(None)], "agentlightning/triplets": [{"prompt": "p"}]})  # no tool rows: none
    assert t.tool_sources == {"recorded": 1, "inferred": 1, "toolset_hash": 1}


def test_schemas_taken_from_the_schemas_file_by_name_say_so() -> None:
    """They used to be labelled ``inferred``, as if made up from the arguments (the README: the label says
    which of ``tools.schemas_file`` and inferred gave them)."""
    from tracebridge.export.config import ToolsConfig
    from tracebridge.export.tools import ToolRegistry

    weather = {"type": "function", "function": {"name": "get_weather", "description": "From the file",
                                                "parameters": {"type": "object", "properties": {}}}}
    call = {"event_type": "worker_tool_call", "payload": {"tool": "get_weather", "args": {"city": "Paris"}}}
    other = {"event_type": "worker_tool_call", "payload": {"tool": "get_time", "args": {"tz": "UTC"}}}
    session = {"hashes": {"toolset_hash": "not-the-files"}}
    with tempfile.TemporaryDirectory() as d:
        (Path(d) / "tools.json").write_text(json.dumps([weather]))
        reg = ToolRegistry(ToolsConfig(schemas_file=str(Path(d) / "tools.json")))
        assert reg.for_run(session, [call]) == ([weather], "schemas_file")
        tools, source = reg.for_run(session, [call, other])  # one tool the file lacks: made up
        assert source == "inferred" and weather in tools and len(tools) == 2
    assert ToolRegistry().for_run(session, [call])[1] == "inferred"
