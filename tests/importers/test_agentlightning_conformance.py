"""Agent Lightning span formats beyond the AgentOps ones: what LiteLLM's OpenTelemetry callback records
for the LLM proxy (``gen_ai.input.messages`` / ``gen_ai.output.messages``), the same call recorded by
the client and the proxy, every reward format Agent Lightning's ``get_reward_value`` reads, the object
and annotation emitters, and token ids. Spans come from the real libraries (LiteLLM's callback,
Agent Lightning's emitters and ``Span`` model); only the legacy reward formats, which the installed
version no longer writes, and token ids, which need a vLLM server, are built as ``Span`` records.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.importers.conftest import lazy_importorskip
from tracebridge.export.pipeline import export_traces
from tracebridge.importers.agentlightning.hook import RuntimeHook
from tracebridge.importers.agentlightning.importer import import_agentlightning
from tracebridge.importers.agentlightning.spans import reward_of, span_kind, spans_to_events

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
agl = lazy_importorskip("agentlightning")
litellm = lazy_importorskip("litellm")
DATA = Path(__file__).parent.parent / "data" / "agentlightning"

WEATHER = {"type": "function", "function": {"name": "get_weather", "description": "Weather of a city",
                                            "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                                                           "required": ["city"]}}}
SYSTEM = {"role": "system", "content": "Answer briefly."}
USER = {"role": "user", "content": "What is the weather in Paris?"}
CALL = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}


@pytest.fixture(scope="module")
def otel_exporter() -> Iterator[Any]:
    """LiteLLM's own OpenTelemetry callback, installed once for the module (LiteLLM keeps the callbacks it
    saw at its first call), writing to an in-memory exporter."""
    import litellm  # the stand-in only reads: set the callbacks on the module itself
    from litellm.integrations.opentelemetry import OpenTelemetry, OpenTelemetryConfig
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter, provider = InMemorySpanExporter(), TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    saved = litellm.callbacks
    litellm.callbacks = [OpenTelemetry(OpenTelemetryConfig(exporter=exporter), tracer_provider=provider)]
    yield exporter
    litellm.callbacks = saved


Call = tuple[list[dict[str, Any]], dict[str, Any], str]  # messages, reply message, response id


def _litellm_spans(exporter: Any, calls: list[Call]) -> list[dict[str, Any]]:
    """Each (messages, reply message, response id) through ``litellm.completion`` (a mocked provider reply)
    with LiteLLM's OpenTelemetry callback, as Agent Lightning's LLM proxy records it; the spans as its
    store keeps them (``Span.from_opentelemetry``)."""
    exporter.clear()
    for messages, reply, rid in calls:
        finish = "tool_calls" if reply.get("tool_calls") else "stop"
        choice = {"index": 0, "message": reply, "finish_reason": finish}
        mock = litellm.ModelResponse(id=rid, model="qwen", choices=[choice],
                                     usage={"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17})
        litellm.completion(model="hosted_vllm/qwen", messages=messages, tools=[WEATHER], temperature=0.5,
                           mock_response=mock)
    # LiteLLM logs a call on a thread of its own after returning: wait for every call's span
    deadline = time.monotonic() + 60
    while sum(s.name == "litellm_request" for s in exporter.get_finished_spans()) < len(calls):
        assert time.monotonic() < deadline, "LiteLLM's callback recorded no span"
        time.sleep(0.01)
    spans = sorted(exporter.get_finished_spans(), key=lambda s: s.start_time)
    return [agl.Span.from_opentelemetry(s, rollout_id="ro-proxy", attempt_id="at-1", sequence_id=i)
            .model_dump(mode="json") for i, s in enumerate(spans)]


def _proxy_conversation(exporter: Any) -> list[dict[str, Any]]:
    tool = {"role": "tool", "tool_call_id": "call_1", "content": "sunny, 21 C"}
    assistant = {"role": "assistant", "content": None, "tool_calls": [CALL]}
    return _litellm_spans(exporter, [([SYSTEM, USER], assistant, "chatcmpl-1"),
                           ([SYSTEM, USER, assistant, tool], {"role": "assistant", "content": "Sunny, 21 C."},
                            "chatcmpl-2")])


def _events(run_dir: Path) -> list[dict[str, Any]]:
    return [orjson.loads(x) for x in (run_dir / "events.jsonl").read_bytes().splitlines()]


def test_llm_proxy_spans_become_calls_and_rows(tmp_path: Path, otel_exporter: Any) -> None:
    spans = _proxy_conversation(otel_exporter)
    # what LiteLLM writes: JSON messages with parts, the reply's tool call without its id, no gen_ai.prompt.N
    attrs = [s["attributes"] for s in spans if s["name"] == "litellm_request"]
    assert len(attrs) == 2 and not any(k.startswith("gen_ai.prompt.") for a in attrs for k in a)
    assert json.loads(attrs[0]["gen_ai.input.messages"])[1] == {"role": "user", "parts": [
        {"type": "text", "content": USER["content"]}]}
    assert attrs[0]["gen_ai.completion.0.function_call.name"] == "get_weather"
    (tmp_path / "spans.jsonl").write_bytes(b"".join(orjson.dumps(s) + b"\n" for s in spans))
    rep = import_agentlightning([tmp_path / "spans.jsonl"], tmp_path / "t")
    assert rep.reconciles and rep.runs_written == 1 and not rep.drift, rep.to_dict()
    assert rep.tool_schemas == {"recorded": 2}
    (run_dir,) = [p for p in (tmp_path / "t").iterdir() if p.name.startswith("al-")]
    first, second = [e for e in _events(run_dir) if e["event_type"] == "worker_action"]
    assert json.loads(first["llm"]["rendered_prompt"]) == [SYSTEM, USER]
    assert first["payload"]["action"] == "tool_call" and first["payload"]["args"] == {"city": "Paris"}
    # LiteLLM recorded no id for the reply's tool call: the next prompt's echo of it gives the real one
    assert first["llm"]["tool_calls"] == [{"id": "call_1", "name": "get_weather", "arguments": '{"city": "Paris"}'}]
    assert rep.to_dict()["tool_call_ids"] == {"reconciled": 1, "unrecorded": 0} and "labels" not in first
    assert first["llm"]["tools"] == [WEATHER] and first["llm"]["usage"]["input_tokens"] == 12
    assert first["llm"]["model"] == "qwen" and first["llm"]["params"]["temperature"] == 0.5
    prompt = json.loads(second["llm"]["rendered_prompt"])
    assert prompt[2] == {"role": "assistant", "content": None, "tool_calls": [CALL]}
    assert prompt[3] == {"role": "tool", "content": "sunny, 21 C", "tool_call_id": "call_1"}
    assert second["llm"]["response"] == "Sunny, 21 C." and "tool_calls" not in second["llm"]

    res = export_traces(tmp_path / "t", tmp_path / "b")
    rows = [orjson.loads(x) for f in sorted((res.path / "views" / "worker_sft").glob("*.jsonl"))
            for x in f.read_bytes().splitlines()]
    assert [r["messages"][-1]["content"] for r in rows] == ["", "Sunny, 21 C."]
    assert rows[1]["messages"][:2] == [SYSTEM, USER] and rows[1]["messages"][3]["tool_call_id"] == "call_1"


def _tool_span(rollout: dict[str, Any], start: float, city: str, ok: bool) -> dict[str, Any]:
    """The agent's ``agl.operation`` span of the tool it ran (no ``tool.call.id``), in ``rollout``'s rollout."""
    attrs = {"agentlightning.operation.name": "get_weather", "agentlightning.operation.input.city": city,
             "agentlightning.operation.output": "sunny, 21 C" if ok else "weather service down"}
    span = _span("agentlightning.operation", attrs, 90).model_dump(mode="json")
    status = {"status_code": "OK"} if ok else {"status_code": "ERROR", "description": "weather service down"}
    return {**span, "rollout_id": rollout["rollout_id"], "attempt_id": rollout["attempt_id"], "sequence_id": 90,
            "start_time": start, "end_time": start + 1e-4, "status": status}


def _import_rows(tmp_path: Path, spans: list[dict[str, Any]]) -> tuple[Any, list[dict[str, Any]], list[Any]]:
    """(import report, the run's events, its ``worker_sft`` rows) of spans through the importer and export."""
    (tmp_path / "spans.jsonl").write_bytes(b"".join(orjson.dumps(s) + b"\n" for s in spans))
    rep = import_agentlightning([tmp_path / "spans.jsonl"], tmp_path / "t")
    assert rep.reconciles and rep.runs_written == 1, rep.to_dict()
    (run_dir,) = [p for p in (tmp_path / "t").iterdir() if p.name.startswith("al-")]
    res = export_traces(tmp_path / "t", tmp_path / "b")
    rows = [orjson.loads(x) for f in sorted((res.path / "views" / "worker_sft").glob("*.jsonl"))
            for x in f.read_bytes().splitlines()]
    return rep, _events(run_dir), rows


def test_proxy_reply_tool_calls_take_the_ids_the_next_prompt_shows(tmp_path: Path, otel_exporter: Any) -> None:
    real = {**CALL, "id": "call_abc123"}
    assistant = {"role": "assistant", "content": None, "tool_calls": [real]}
    tool = {"role": "tool", "tool_call_id": "call_abc123", "content": "weather service down"}
    spans = _litellm_spans(otel_exporter, [([SYSTEM, USER], assistant, "chatcmpl-1"),
                                           ([SYSTEM, USER, assistant, tool], {"role": "assistant", "content": "Unknown."},
                                            "chatcmpl-2")])
    first, second = sorted((s for s in spans if s["name"] == "litellm_request"), key=lambda s: s["start_time"])
    assert "gen_ai.completion.0.function_call.id" not in first["attributes"]  # LiteLLM drops the provider's id
    spans.append(_tool_span(first, (first["end_time"] + second["start_time"]) / 2, "Paris", ok=False))
    for i, s in enumerate(sorted(spans, key=lambda s: s["start_time"])):  # numbered as the store got them: the
        s["sequence_id"] = i  # tool's between the two calls (the store's order, not the clocks', is the run's)
    rep, events, rows = _import_rows(tmp_path, spans)
    assert rep.to_dict()["tool_call_ids"] == {"reconciled": 1, "unrecorded": 0}
    # the reply, the tool that ran (and failed) and the next prompt's messages name one id
    action = next(e for e in events if e["event_type"] == "worker_action")
    assert action["llm"]["tool_calls"][0]["id"] == "call_abc123"
    assert [e["payload"]["call_id"] for e in events if e["event_type"].startswith("worker_tool_")] == ["call_abc123"] * 2
    assert rows[0]["messages"][-1]["tool_calls"][0]["id"] == "call_abc123"
    assert rows[1]["messages"][2]["tool_calls"][0]["id"] == rows[1]["messages"][3]["tool_call_id"] == "call_abc123"
    assert rows[0]["meta"]["labels"]["tool_ok"] is False
    assert rows[1]["meta"]["labels"]["failed_tool_calls"] == ["call_abc123"]
    assert "tool_call_ids" not in rows[0]["meta"]["labels"]


def test_a_last_reply_never_echoed_keeps_call_k_and_is_labelled(tmp_path: Path, otel_exporter: Any) -> None:
    real = {**CALL, "id": "call_abc123"}
    assistant = {"role": "assistant", "content": None, "tool_calls": [real]}
    tool = {"role": "tool", "tool_call_id": "call_abc123", "content": "sunny, 21 C"}
    again = {"role": "assistant", "content": None, "tool_calls": [{**CALL, "id": "call_def456", "function": {
        "name": "get_weather", "arguments": '{"city": "Rome"}'}}]}
    spans = _litellm_spans(otel_exporter, [([SYSTEM, USER], assistant, "chatcmpl-1"),
                                           ([SYSTEM, USER, assistant, tool], again, "chatcmpl-2")])
    rep, events, rows = _import_rows(tmp_path, spans)
    assert rep.to_dict()["tool_call_ids"] == {"reconciled": 1, "unrecorded": 1}
    first, last = [e for e in events if e["event_type"] == "worker_action"]
    assert first["llm"]["tool_calls"][0]["id"] == "call_abc123" and "labels" not in first
    assert last["llm"]["tool_calls"] == [{"id": "call_0", "name": "get_weather", "arguments": '{"city": "Rome"}'}]
    assert last["labels"] == {"tool_call_ids": "unrecorded"}
    assert rows[1]["messages"][-1]["tool_calls"][0]["id"] == "call_0"
    assert rows[1]["meta"]["labels"]["tool_call_ids"] == "unrecorded"


def test_an_echo_with_other_arguments_is_not_the_reply(otel_exporter: Any) -> None:
    # the next prompt continues the conversation, but its assistant message called the tool with other
    # arguments (the agent rewrote them): no evidence that its id is the reply's
    echoed = {"role": "assistant", "content": None, "tool_calls": [{**CALL, "id": "call_abc123", "function": {
        "name": "get_weather", "arguments": '{"city": "Rome"}'}}]}
    tool = {"role": "tool", "tool_call_id": "call_abc123", "content": "sunny, 21 C"}
    reply = {"role": "assistant", "content": None, "tool_calls": [{**CALL, "id": "call_abc123"}]}
    spans = _litellm_spans(otel_exporter, [([SYSTEM, USER], reply, "chatcmpl-1"),
                                           ([SYSTEM, USER, echoed, tool], {"role": "assistant", "content": "Sunny."},
                                            "chatcmpl-2")])
    run = spans_to_events(spans, "r", "task")
    first = next(e for e in run.events if e["event_type"] == "worker_action")
    assert first["llm"]["tool_calls"][0]["id"] == "call_0" and first["labels"] == {"tool_call_ids": "unrecorded"}
    assert run.tool_call_ids == {"unrecorded": 1}
    # the same echo with the reply's arguments (other spacing: decoded alike) is reconciled
    echoed["tool_calls"][0]["function"]["arguments"] = '{"city":"Paris"}'
    spans = _litellm_spans(otel_exporter, [([SYSTEM, USER], reply, "chatcmpl-1"),
                                           ([SYSTEM, USER, echoed, tool], {"role": "assistant", "content": "Sunny."},
                                            "chatcmpl-2")])
    run = spans_to_events(spans, "r", "task")
    first = next(e for e in run.events if e["event_type"] == "worker_action")
    assert first["llm"]["tool_calls"][0]["id"] == "call_abc123" and run.tool_call_ids == {"reconciled": 1}


def test_a_call_recorded_by_client_and_proxy_is_one_call(otel_exporter: Any) -> None:
    client = [orjson.loads(x) for x in (DATA / "agentops_openai_spans.jsonl").read_bytes().splitlines()]
    llm = [s for s in client if s["name"] == "openai.chat.completion"]
    rid = llm[0]["attributes"]["gen_ai.response.id"]
    assistant = {"role": "assistant", "content": None, "tool_calls": [CALL]}
    # the proxy's span of the client's first call
    (proxy,) = _litellm_spans(otel_exporter, [([USER], assistant, rid)])[:1]
    proxy = {**proxy, "start_time": llm[0]["start_time"] + 0.001, "parent_id": llm[0]["span_id"]}
    alone = spans_to_events(client, "r", "task")
    both = spans_to_events([*client, proxy], "r", "task")
    assert both.kinds["llm_duplicate"] == 1 and not both.drift
    assert [e["event_type"] for e in both.events] == [e["event_type"] for e in alone.events]
    assert both.tokens == alone.tokens


def _span(name: str, attrs: dict[str, Any], k: int = 0) -> Any:
    ctx = {"trace_id": "0" * 31 + "1", "span_id": f"{k + 1:016x}", "is_remote": False, "trace_state": {}}
    return agl.Span.model_validate({
        "rollout_id": "ro-1", "attempt_id": "at-1", "sequence_id": k, "trace_id": ctx["trace_id"],
        "span_id": ctx["span_id"], "parent_id": None, "name": name, "status": {"status_code": "OK"},
        "attributes": attrs, "events": [], "links": [], "start_time": 2e9 + k, "end_time": 2e9 + k + 0.5,
        "context": ctx, "parent": None, "resource": {"attributes": {}, "schema_url": ""}})


def test_every_reward_format_reads_as_agentlightning_reads_it(tmp_path: Path) -> None:
    def agent(task: dict[str, Any]) -> str:
        agl.emit_reward(0.25)
        agl.emit_reward({"task": 1.0, "efficiency": 0.5}, primary_key="task")
        return "done"

    emitted = RuntimeHook(tmp_path, keep_spans=True).run(agent, {"question": "q"}).raw_spans
    spans = [agl.Span.model_validate(s) for s in emitted] + [
        _span("agentlightning.annotation", {"reward": 0.5}, 2),  # 0.2's reward annotation
        _span("agentops_reward_operation.task", {"agentops.task.output": '{"type": "reward", "value": 0.75}'}, 3),
        _span("my.reward", {"agentlightning.reward.0.name": "primary", "agentlightning.reward.0.value": 0.0}, 4),
        _span("agentops_reward_operation.task", {"agentops.task.output": '{"type": "reward", "value": null}'}, 5),
        _span("agentlightning.annotation", {"agentlightning.tag.0": "fast"}, 6),
    ]
    dumped = [s.model_dump(mode="json") for s in spans]
    ours = [(r[0] if (r := reward_of(d["name"], d["attributes"])) else None) for d in dumped]
    assert ours == [agl.get_reward_value(s) for s in spans] == [0.25, 1.0, 0.5, 0.75, 0.0, None, None]
    assert [span_kind(d) for d in dumped] == ["reward"] * 5 + ["other", "annotation"]
    run = spans_to_events(dumped, "r", "task")
    rewards = [e for e in run.events if e["payload"].get("source") == "agentlightning.reward"]
    assert [e["labels"]["reward"] for e in rewards] == [0.25, 1.0, 0.5, 0.75, 0.0]
    assert rewards[1]["payload"]["observation"]["dimensions"] == {"task": 1.0, "efficiency": 0.5}
    assert run.final_reward == agl.find_final_reward(spans) == 0.0 and run.events[-1]["payload"]["success"] is False


def test_object_and_annotation_spans_are_observations(tmp_path: Path) -> None:
    from agentlightning.utils.otel import make_tag_attributes

    def agent(task: dict[str, Any]) -> str:
        agl.emit_object({"plan": ["search", "answer"]})
        agl.emit_object(7)
        agl.emit_annotation({**make_tag_attributes(["fast"]), "note": "checked"})
        return "done"

    res = RuntimeHook(tmp_path, keep_spans=True).run(agent, {"question": "q"})
    assert res.span_kinds == {"object": 2, "annotation": 1}
    obs = [e["payload"] for e in _events(res.run_dir) if e["event_type"] == "env_observation"]
    assert obs == [{"observation": {"plan": ["search", "answer"]}, "source": "agentlightning.object"},
                   {"observation": 7, "source": "agentlightning.object"},
                   {"observation": {"tag": ["fast"], "note": "checked"}, "source": "agentlightning.annotation"}]
    objects = [agl.Span.model_validate(s) for s in res.raw_spans if s["name"] == "agentlightning.object"]
    assert [o["observation"] for o in obs[:2]] == [agl.get_object_value(s) for s in objects]


def test_token_ids_are_kept_on_the_call_not_in_rows(tmp_path: Path) -> None:
    # the attributes Agent Lightning's instrumentation writes from a vLLM reply (instrumentation/agentops.py)
    ids = {"prompt_token_ids": [101, 7, 42], "response_token_ids": [5, 6, 2]}
    attrs = {"gen_ai.prompt.0.role": "user", "gen_ai.prompt.0.content": "hi", "gen_ai.completion.0.role": "assistant",
             "gen_ai.completion.0.content": "hello", "gen_ai.response.id": "chatcmpl-9", **ids}
    span = _span("openai.chat.completion", attrs)
    (triplet,) = agl.TracerTraceToTriplet().adapt([span])
    assert (triplet.prompt["token_ids"], triplet.response["token_ids"]) == ([101, 7, 42], [5, 6, 2])
    run = spans_to_events([span.model_dump(mode="json")], "r", "task")
    (action,) = [e for e in run.events if e["event_type"] == "worker_action"]
    assert action["labels"] == ids and action["llm"]["response"] == "hello"
    # rows hold redacted text: the raw text's token ids stay in the traces
    (tmp_path / "spans.jsonl").write_bytes(span.model_dump_json().encode() + b"\n")
    assert import_agentlightning([tmp_path / "spans.jsonl"], tmp_path / "t").runs_written == 1
    res = export_traces(tmp_path / "t", tmp_path / "b")
    (row,) = [orjson.loads(x) for f in (res.path / "views" / "worker_sft").glob("*.jsonl")
              for x in f.read_bytes().splitlines()]
    assert row["messages"][-1] == {"role": "assistant", "content": "hello"}
    assert not set(ids) & set(row["meta"]["labels"])


def test_proxy_token_ids_read_where_agentlightning_reads_them(otel_exporter: Any) -> None:
    spans = _proxy_conversation(otel_exporter)
    raw = [s for s in spans if s["name"] == "raw_gen_ai_request"]
    assert len(raw) == 2 and not any(s["attributes"] for s in raw)  # this LiteLLM leaves the payload out
    for k, s in enumerate(raw):  # as LiteLLM wrote vLLM's reply there (Python reprs), and Agent Lightning reads it
        s["attributes"] = {"llm.hosted_vllm.prompt_token_ids": str([1, 2, k]),
                           "llm.hosted_vllm.choices": str([{"index": 0, "token_ids": [7, k], "logprobs": None}])}
    triplets = agl.LlmProxyTraceToTriplet().adapt([agl.Span.model_validate(s) for s in spans])
    run = spans_to_events(spans, "r", "task")
    actions = [e for e in run.events if e["event_type"] == "worker_action"]
    assert [a["labels"] for a in actions] == [
        {"prompt_token_ids": t.prompt["token_ids"], "response_token_ids": t.response["token_ids"]} for t in triplets]
    assert [a["labels"]["response_token_ids"] for a in actions] == [[7, 0], [7, 1]]
    assert run.kinds["llm_raw"] == 2 and not run.drift


def test_a_model_call_that_raised_is_an_error_of_the_run(tmp_path: Path) -> None:
    def agent(task: dict[str, Any]) -> str:
        attrs = {"gen_ai.request.model": "m", "gen_ai.prompt.0.role": "user", "gen_ai.prompt.0.content": "hi"}
        try:
            with agl.get_active_tracer().operation_context("openai.chat.completion", attributes=attrs):
                raise ConnectionError("model server unreachable")
        except ConnectionError:
            return "gave up"

    res = RuntimeHook(tmp_path, keep_spans=True).run(agent, {"question": "q"})
    assert res.result == "gave up" and res.capture_ok
    evs = _events(res.run_dir)
    action, error = evs[1], evs[2]
    assert action["event_type"] == "worker_action" and action["llm"]["response"] is None
    assert error["event_type"] == "episode_error" and error["parent_event_id"] == action["event_id"]
    assert error["payload"] == {"kind": "ConnectionError", "message": "ConnectionError: model server unreachable",
                                "recoverable": True}


def test_semconv_parts_become_chat_messages() -> None:
    # the GenAI semantic conventions' message shape (no instrumentation that writes parts like these is installed)
    from tracebridge.importers.agentlightning.llm_calls import semconv_messages

    msgs = [{"role": "assistant", "parts": [{"type": "reasoning", "content": "need weather"},
                                            {"type": "tool_call", "id": "c1", "name": "get_weather",
                                             "arguments": {"city": "Paris"}}]},
            {"role": "tool", "parts": [{"type": "tool_call_response", "id": "c1", "response": {"temp": 21}}]},
            {"role": "user", "parts": [{"type": "text", "content": "and "}, {"type": "text", "content": "Rome?"}]},
            "not a message"]
    assert semconv_messages(msgs) == [
        {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "name": "get_weather",
                                                               "arguments": '{"city":"Paris"}'}]},
        {"role": "tool", "tool_call_id": "c1", "content": '{"temp":21}'},
        {"role": "user", "content": [{"type": "text", "text": "and "}, {"type": "text", "text": "Rome?"}]},
        None]


def test_weave_tracer_model_calls_read_like_the_others() -> None:
    # the weave tracer records the client call's input and output through Agent Lightning's own flattening
    # (weave itself is not installed here: its Call object is what these helpers receive)
    from agentlightning.utils.otel import flatten_attributes, sanitize_attributes

    def call(k: int, messages: list[dict[str, Any]], reply: dict[str, Any]) -> Any:
        output = {"id": f"chatcmpl-w{k}", "model": "qwen", "prompt_token_ids": [9, k],
                  "choices": [{"index": 0, "finish_reason": "stop", "message": reply, "token_ids": [4, k]}],
                  "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}}
        attrs = {"agentlightning.operation.name": "openai.chat.completions.create",
                 "agentlightning.operation.input": {"model": "qwen", "messages": messages, "tools": [WEATHER]},
                 "agentlightning.operation.output": output}
        flat = sanitize_attributes(flatten_attributes(attrs, expand_leaf_lists=False))
        return _span("openai.chat.completions.create", flat, k)

    assistant = {"role": "assistant", "content": None, "tool_calls": [CALL]}
    tool = {"role": "tool", "tool_call_id": "call_1", "content": "sunny"}
    spans = [call(0, [USER], assistant), call(1, [USER, assistant, tool], {"role": "assistant", "content": "Sunny."})]
    triplets = agl.TracerTraceToTriplet(llm_call_match=r"openai\.chat").adapt(spans)
    run = spans_to_events([s.model_dump(mode="json") for s in spans], "r", "task")
    first, second = [e for e in run.events if e["event_type"] == "worker_action"]
    assert json.loads(first["llm"]["rendered_prompt"]) == [USER] and first["llm"]["model"] == "qwen"
    assert first["llm"]["tool_calls"] == [{"id": "call_1", "name": "get_weather", "arguments": '{"city": "Paris"}'}]
    assert first["llm"]["tools"] == [WEATHER] and first["llm"]["usage"]["input_tokens"] == 5
    assert json.loads(second["llm"]["rendered_prompt"])[1:] == [{"role": "assistant", "tool_calls": [CALL]}, tool]
    assert second["llm"]["response"] == "Sunny." and run.tool_schemas == {"recorded": 2} and not run.drift
    assert [e["labels"] for e in (first, second)] == [
        {"prompt_token_ids": t.prompt["token_ids"], "response_token_ids": t.response["token_ids"]} for t in triplets]
