"""The tool schemas an Agent Lightning model call offered, kept in its run: the events used to keep only
their hash, so every worker row got schemas inferred from the arguments (a made-up description, no
optional parameters, no enums) unless the user wrote a ``tools.schemas_file``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson

from tracebridge.importers.agentlightning.runs import write_events
from tracebridge.importers.agentlightning.spans import spans_to_events
from tracebridge.importers.openclaw.runs import RunWriter
from tracebridge.schema.canonical import sha256_json

# spans a real OpenAI client wrote under Agent Lightning's AgentOpsTracer (two calls, one tool call)
RECORDED = Path(__file__).resolve().parents[1] / "data" / "agentlightning" / "agentops_openai_spans.jsonl"
WEATHER = {"type": "function", "function": {"name": "get_weather", "description": "Weather of a city",
                                            "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                                                           "required": ["city"]}}}
TASK = {"question": "What is the weather in Paris?"}


def _recorded() -> list[dict[str, Any]]:
    return [json.loads(line) for line in RECORDED.read_text().splitlines()]


def _llm_attrs(spans: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [s["attributes"] for s in spans if s["name"] == "openai.chat.completion"]


def _written(tmp_path: Path, spans: list[dict[str, Any]], break_first: bool = False
             ) -> tuple[list[dict[str, Any]], int]:
    run = spans_to_events(spans, "al-1", TASK)
    if break_first:  # the schema refuses the first call's event
        next(e for e in run.events if e["event_type"] == "worker_action")["llm"]["usage"]["input_tokens"] = -1
    writer = RunWriter(tmp_path, "al-1", durable=False)
    dropped = write_events(writer, run)
    writer.close({"run_id": "al-1"})
    evs = [orjson.loads(x) for x in (tmp_path / "al-1" / "events.jsonl").read_bytes().splitlines()]
    return [e for e in evs if e["event_type"] == "worker_action"], dropped


def test_the_schemas_offered_are_written_once_a_run(tmp_path: Path) -> None:
    (first, second), dropped = _written(tmp_path, _recorded())
    assert dropped == 0 and first["llm"]["tools"] == [WEATHER] and "tools" not in second["llm"]
    assert first["llm"]["toolset_hash"] == second["llm"]["toolset_hash"] == sha256_json([WEATHER])
    # in the order the agent wrote them (the model saw the properties in it), not sorted
    assert list(first["llm"]["tools"][0]["function"]["parameters"]) == ["type", "properties", "required"]


def test_a_dropped_call_leaves_the_schemas_to_the_next(tmp_path: Path) -> None:
    (second,), dropped = _written(tmp_path, _recorded(), break_first=True)
    assert dropped == 1 and second["llm"]["tools"] == [WEATHER]


def test_openllmetry_and_litellm_function_attributes_are_read() -> None:
    spans = _recorded()
    for attrs in _llm_attrs(spans):
        for k in [k for k in attrs if k.startswith("gen_ai.request.functions.")]:
            attrs["llm.request.functions." + k.removeprefix("gen_ai.request.functions.")] = attrs.pop(k)
    run = spans_to_events(spans, "al-1", TASK)
    first = next(e for e in run.events if e["event_type"] == "worker_action")
    assert first["llm"]["tools"] == [WEATHER] and first["llm"]["toolset_hash"] == sha256_json([WEATHER])
    assert run.tool_schemas == {"recorded": 2}


def test_calls_whose_spans_hold_no_readable_schemas_are_counted() -> None:
    spans = _recorded()
    first, second = _llm_attrs(spans)
    for k in [k for k in first if k.startswith("gen_ai.request.functions.")]:
        del first[k]  # an instrumentation that records no tool list
    second["gen_ai.request.functions.0.parameters"] = '{"type": "object", "properties": {"ci'  # cut short
    run = spans_to_events(spans, "al-1", TASK)
    a, b = [e["llm"] for e in run.events if e["event_type"] == "worker_action"]
    assert "toolset_hash" not in a and a["tool_calls"] and "tools" not in a
    assert b["toolset_hash"] and "tools" not in b  # offered, but a schema that was cut short is not kept
    assert run.tool_schemas == {"missing": 2}


def test_tool_call_arguments_keep_the_string_the_model_returned() -> None:
    spans = _recorded()
    (request,) = [s for s in spans if s["name"] == "tool_call.get_weather"]
    request["attributes"]["tool.parameters"] = '{ "city" : "Paris" }'
    run = spans_to_events(spans, "al-1", TASK)
    action, call = [e for e in run.events if e["event_type"] in ("worker_action", "worker_tool_call")][:2]
    assert action["llm"]["tool_calls"][0]["arguments"] == '{ "city" : "Paris" }'
    # the decisions and the tool that ran still hold the arguments as an object (and share the call's id)
    assert action["payload"]["args"] == call["payload"]["args"] == {"city": "Paris"}
    assert call["payload"]["call_id"] == "call_1"


def test_a_call_whose_prompt_holds_tool_results_counts_as_missing_without_schemas() -> None:
    spans = _recorded()
    for attrs in _llm_attrs(spans):
        for k in [k for k in attrs if k.startswith("gen_ai.request.functions.")]:
            del attrs[k]
    # the second call called no tool, but its prompt holds the first call's tool call and result
    assert spans_to_events(spans, "al-1", TASK).tool_schemas == {"missing": 2}
