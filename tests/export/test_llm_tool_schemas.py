"""Worker rows of recorded model calls carry the tool schemas the call offered and the tool-call arguments
as the model wrote them. They used to carry the run's schemas inferred from the arguments (a made-up
description, every key seen required) and arguments re-serialised compactly with sorted keys."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import orjson

from tracebridge.export.config import ViewsConfig
from tracebridge.export.tools import infer_schema
from tracebridge.export.views import RunContext, build_views
from tracebridge.importers.agentlightning.spans import spans_to_events

# spans a real OpenAI client wrote under Agent Lightning's AgentOpsTracer: a call that asks for
# get_weather, the tool, a call that answers; both calls offered WEATHER
RECORDED = Path(__file__).resolve().parents[1] / "data" / "agentlightning" / "agentops_openai_spans.jsonl"
WEATHER = {"type": "function", "function": {"name": "get_weather", "description": "Weather of a city",
                                            "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                                                           "required": ["city"]}}}
INFERRED = [infer_schema("get_weather", [{"city": "Paris"}])]  # what the export's ToolRegistry gives these runs


def _recorded() -> list[dict[str, Any]]:
    return [json.loads(line) for line in RECORDED.read_text().splitlines()]


def _events(spans: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The events as a run holds them: the schemas on the first call that offered them only."""
    events = spans_to_events(spans, "al-1", {"question": "What is the weather in Paris?"}).events
    seen = set()
    for e in events:
        if "tools" in (e.get("llm") or {}):
            if e["llm"]["toolset_hash"] in seen:
                del e["llm"]["tools"]
            seen.add(e["llm"]["toolset_hash"])
    return events


def _rows(events: list[dict[str, Any]], cfg: ViewsConfig | None = None) -> list[dict[str, Any]]:
    ctx = RunContext("al-1", "agentlightning", "train", "agentlightning", True, tools=INFERRED, tool_source="inferred")
    out, stats = build_views(events, ctx, cfg or ViewsConfig())
    assert not stats
    return out["worker_sft"]


def test_rows_carry_the_schemas_the_call_offered() -> None:
    events = _events(_recorded())
    assert sum("tools" in (e.get("llm") or {}) for e in events) == 1
    rows = _rows(events)
    # byte for byte as the agent passed them: its key order, its description, not sorted, not inferred
    assert [r["tools"] for r in rows] == [orjson.dumps([WEATHER]).decode()] * 2
    assert [r["meta"]["labels"]["tool_source"] for r in rows] == ["recorded", "recorded"]


def test_without_json_strings_the_schemas_are_the_list_in_its_order() -> None:
    rows = _rows(_events(_recorded()), ViewsConfig(json_strings=False))
    assert rows[0]["tools"] == [WEATHER] and rows[1]["tools"] == [WEATHER]
    assert list(rows[0]["tools"][0]["function"]["parameters"]) == ["type", "properties", "required"]
    assert rows[0]["messages"][-1]["tool_calls"][0]["function"]["arguments"] == {"city": "Paris"}


def test_a_call_whose_schemas_were_not_recorded_falls_back_to_the_runs_and_says_so() -> None:
    spans = _recorded()
    first = next(s for s in spans if s["name"] == "openai.chat.completion")["attributes"]
    for k in [k for k in first if k.startswith("gen_ai.request.functions.")]:
        del first[k]  # the first call's span holds no tool list; the second call's does
    rows = _rows(_events(spans))
    assert rows[0]["tools"] == orjson.dumps(INFERRED).decode()  # in the schemas' key order, as served
    assert rows[1]["tools"] == orjson.dumps([WEATHER]).decode()
    assert [r["meta"]["labels"]["tool_source"] for r in rows] == ["inferred", "recorded"]


def test_tool_call_arguments_are_the_strings_recorded() -> None:
    spans = _recorded()
    next(s for s in spans if s["name"] == "tool_call.get_weather")["attributes"]["tool.parameters"] = \
        '{ "city" : "Paris" }'
    first, second = _rows(_events(spans))
    assert first["messages"][-1]["tool_calls"][0]["function"]["arguments"] == '{ "city" : "Paris" }'
    # the next prompt's assistant turn, as agentops recorded the message the agent sent back
    assert second["messages"][1]["tool_calls"][0]["function"]["arguments"] == '{"city": "Paris"}'


def _retry(spans: list[dict[str, Any]], arguments: str) -> list[dict[str, Any]]:
    """The recorded rollout with the tool failing and the second call asking for it again (``arguments``)."""
    spans = copy.deepcopy(spans)
    op = next(s for s in spans if s["name"] == "agentlightning.operation")
    op["status"] = {"status_code": "ERROR", "description": "timeout"}
    second = [s for s in spans if s["name"] == "openai.chat.completion"][1]
    attrs = second["attributes"]
    del attrs["gen_ai.completion.0.content"]
    attrs.update({"gen_ai.completion.0.tool_calls.0.id": "call_2", "gen_ai.completion.0.tool_calls.0.name": "get_weather",
                  "gen_ai.completion.0.tool_calls.0.arguments": arguments})
    again = {**copy.deepcopy(op), "span_id": "again", "status": {"status_code": "OK"},
             "start_time": second["end_time"] + 0.0001, "end_time": second["end_time"] + 0.0002,
             "sequence_id": max(s.get("sequence_id") or 0 for s in spans) + 1}  # the store numbers it last
    return [*spans, again]


def test_a_retry_is_compared_by_its_tool_and_arguments() -> None:
    """Not by the arguments' bytes, nor by the call id (new on every call): the same call again is no recovery."""
    same = _rows(_events(_retry(_recorded(), '{"city":"Paris"}')))
    assert same[1]["messages"][-1]["tool_calls"][0]["function"]["arguments"] == '{"city":"Paris"}'
    assert same[1]["meta"]["labels"]["tool_ok"] is True and same[1]["meta"]["labels"].get("recovery") is None
    other = _rows(_events(_retry(_recorded(), '{"city": "Lyon"}')))
    assert other[1]["meta"]["labels"]["recovery"] is True
    # the failed call's events: its model call, the tool call and the failed result (not the row's own)
    events = {e["event_id"]: e for e in _events(_retry(_recorded(), '{"city": "Lyon"}'))}
    failed = other[1]["meta"]["labels"]["failed_event_ids"]
    assert failed[0] == other[0]["meta"]["event_ids"][0] and not set(failed) & set(other[1]["meta"]["event_ids"])
    assert [events[i]["event_type"] for i in failed] == ["worker_action", "worker_tool_call", "worker_tool_result"]
    assert events[failed[-1]]["payload"]["ok"] is False


def _strip(spans: list[dict[str, Any]], calls: set[int]) -> list[dict[str, Any]]:
    """The spans with the tool list of the given model calls (0, 1) left out, as an instrumentation that
    records none writes them."""
    llm = [s["attributes"] for s in spans if s["name"] == "openai.chat.completion"]
    for i in calls:
        for k in [k for k in llm[i] if k.startswith("gen_ai.request.functions.")]:
            del llm[i][k]
    return spans


def test_a_call_answering_after_its_tools_without_recorded_schemas_gets_the_runs() -> None:
    """The second call's prompt holds the tool call and its result: the agent offered it tools, so its row
    falls back like the first, not to no tool list (a row teaching tool calls the model was never offered)."""
    rows = _rows(_events(_strip(_recorded(), {0, 1})))
    inferred = orjson.dumps(INFERRED).decode()
    assert [r["tools"] for r in rows] == [inferred, inferred]
    assert [r["meta"]["labels"]["tool_source"] for r in rows] == ["inferred", "inferred"]
    # the first call recorded them: the second falls back to the run's, and says so
    rows = _rows(_events(_strip(_recorded(), {1})))
    assert [r["meta"]["labels"]["tool_source"] for r in rows] == ["recorded", "inferred"]
    assert rows[1]["tools"] == inferred


def test_a_text_only_call_names_no_tool_source() -> None:
    """A row without a tool list does not count as inferred (report.json ``views.tool_schemas``)."""
    prompt = orjson.dumps([{"role": "user", "content": "Say hi"}]).decode()
    events = [{"event_id": "e1", "event_type": "worker_action", "payload": {"action": "respond"},
               "llm": {"rendered_prompt": prompt, "response": "hi"}}]
    (row,) = _rows(events)
    assert row["tools"] is None and "tool_source" not in row["meta"]["labels"]


def test_a_failed_tool_result_is_named_in_the_rows_that_show_it() -> None:
    """A failed result's text rarely says so ("Command exited with code 1"): the rows whose prompt holds
    it name its call id (labels.failed_tool_calls, as OpenClaw rows), which the eval's error_recurrence reads."""
    from tracebridge.eval.metrics import failed_calls, failed_tool_calls

    events = _events(_recorded())
    result = next(e for e in events if e["event_type"] == "worker_tool_result")
    assert _rows(events)[1]["meta"]["labels"].get("failed_tool_calls") is None  # it succeeded: nothing named
    result["payload"]["ok"] = False
    rows = _rows(events)
    call_id = result["payload"]["call_id"]
    assert rows[0]["meta"]["labels"].get("failed_tool_calls") is None  # the first call's prompt holds no result
    named = rows[1]["meta"]["labels"]["failed_tool_calls"]
    assert named == [call_id]  # a list of strings (labels.py types it), as OpenClaw rows
    shown = [m for m in rows[1]["messages"] if m["role"] == "tool"]
    assert [m["tool_call_id"] for m in shown] == [call_id]
    prompt = rows[1]["messages"][:-1]
    assert failed_calls(prompt) == []  # by its text alone the failure is invisible
    assert [t for t, _ in failed_calls(prompt, failed_tool_calls(rows)["al-1"])] == ["get_weather"]
