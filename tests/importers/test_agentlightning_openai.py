"""A real OpenAI client under the runtime hook's AgentOps tracer, against a scripted local server:
the spans real instrumentation writes (not hand-made ones) become the events and training rows.

The server answers the first call with a native tool call and the second with text; the agent runs
the tool under ``agl.operation`` and sends the assistant tool-call message and the tool result back.

AgentOps, once started, stays in its process (it replaces ``builtins.__import__`` and keeps its
instrumentation installed), so the live tests run in a child pytest of their own
(``test_live_tests_in_their_own_process``); the parent runs only the import of recorded spans.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.importers.conftest import lazy_importorskip
from tracebridge.export.pipeline import export_traces
from tracebridge.importers.agentlightning.hook import RuntimeHook
from tracebridge.schema.canonical import sha256_json

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
agl = lazy_importorskip("agentlightning")
openai = lazy_importorskip("openai")
lazy_importorskip("agentops")
CHILD = "TRACEBRIDGE_AGENTOPS_CHILD"
live = pytest.mark.skipif(os.environ.get(CHILD) != "1", reason="runs in its own process (AgentOps stays in a process)")

WEATHER = {"type": "function", "function": {"name": "get_weather", "description": "Weather of a city",
                                            "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                                                           "required": ["city"]}}}
USER = {"role": "user", "content": "What is the weather in Paris?"}
CALL = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}


def _reply(n: int, message: dict[str, Any], finish: str) -> dict[str, Any]:
    return {"id": f"chatcmpl-{n}", "object": "chat.completion", "created": 1767225600, "model": "scripted-weather",
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": {"prompt_tokens": 20 + n, "completion_tokens": 7, "total_tokens": 27 + n}}


SCRIPT = [_reply(1, {"role": "assistant", "content": None, "tool_calls": [CALL]}, "tool_calls"),
          _reply(2, {"role": "assistant", "content": "It is sunny in Paris."}, "stop")]


class ScriptedServer:
    """An OpenAI-compatible ``/v1/chat/completions`` on 127.0.0.1 that answers with ``SCRIPT`` in turn."""

    def __init__(self) -> None:
        self.replies, self.requests = list(SCRIPT), []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                server.requests.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                body = json.dumps(server.replies.pop(0)).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    srv = ScriptedServer()
    yield srv
    srv.httpd.shutdown()
    srv.httpd.server_close()


def weather_agent(url: str, append_object: bool = False):
    """A native tool-calling agent. ``append_object``: send the reply back as the client's message object,
    as OpenAI's function-calling guide does (agentops cannot read it; the mapping must fill it in)."""

    def agent(task: dict[str, Any]) -> str:
        client = openai.OpenAI(base_url=url, api_key="unused", max_retries=0)
        messages: list[Any] = [{"role": "user", "content": task["question"]}]
        first = client.chat.completions.create(model="scripted-weather", messages=messages, tools=[WEATHER])
        msg = first.choices[0].message
        messages.append(msg if append_object else msg.model_dump(exclude_none=True))
        for call in msg.tool_calls or []:
            with agl.operation(name=call.function.name) as op:
                args = json.loads(call.function.arguments)
                op.set_input(**args)
                out = f"sunny in {args['city']}"
                op.set_output(out)
            messages.append({"role": "tool", "tool_call_id": call.id, "content": out})
        second = client.chat.completions.create(model="scripted-weather", messages=messages, tools=[WEATHER])
        agl.emit_reward(1.0)
        return second.choices[0].message.content

    return agent


def _events(run_dir: Path) -> list[dict[str, Any]]:
    return [orjson.loads(x) for x in (run_dir / "events.jsonl").read_bytes().splitlines()]


def _rows(root: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for f in sorted((root / "views" / "worker_sft").glob("*.jsonl"))
            for line in f.read_bytes().splitlines()]


@live
def test_real_openai_calls_become_events(tmp_path: Path, server: ScriptedServer) -> None:
    res = RuntimeHook(tmp_path / "t", tracer="agentops", keep_spans=True).run(
        weather_agent(server.url), {"question": USER["content"]})
    assert res.result == "It is sunny in Paris." and res.capture_ok, res.capture_error
    assert len(server.requests) == 2 and server.requests[1]["messages"][2]["tool_call_id"] == "call_1"
    # what agentops writes: the reply's tool call is a child span of the model call, not an attribute
    llm_spans = [s for s in res.raw_spans if s["name"] == "openai.chat.completion"]
    (request,) = [s for s in res.raw_spans if s["name"] == "tool_call.get_weather"]
    assert request["parent_id"] == llm_spans[0]["span_id"]
    assert {k: request["attributes"][k] for k in ("tool.name", "tool.parameters", "tool.call.id")} == \
        {"tool.name": "get_weather", "tool.parameters": '{"city": "Paris"}', "tool.call.id": "call_1"}
    assert not any(k.startswith("gen_ai.completion.0.tool_calls") for k in llm_spans[0]["attributes"])
    assert res.span_kinds == {"llm": 2, "llm_tool_call": 1, "tool": 1, "reward": 1, "session": 1}

    evs = _events(res.run_dir)
    assert [e["event_type"] for e in evs] == ["planner_input", "worker_action", "worker_tool_call",
                                              "worker_tool_result", "worker_action", "env_observation",
                                              "worker_output", "episode_end"]
    first, call, result, second = evs[1], evs[2], evs[3], evs[4]
    # the arguments string the model returned, and the schemas the call offered (once a run: the second
    # call offered the same toolset and holds its hash only)
    assert first["llm"]["tool_calls"] == [{"id": "call_1", "name": "get_weather", "arguments": '{"city": "Paris"}'}]
    assert first["llm"]["response"] is None and first["llm"]["toolset_hash"] == sha256_json([WEATHER])
    assert first["llm"]["tools"] == [WEATHER] and "tools" not in second["llm"]
    assert second["llm"]["toolset_hash"] == first["llm"]["toolset_hash"]
    assert res.tool_schemas == {"recorded": 2, "missing": 0}
    assert first["payload"] | {"reasoning_summary": None} == {"action": "tool_call", "tool": "get_weather",
                                                              "args": {"city": "Paris"}, "reasoning_summary": None}
    assert first["llm"]["usage"]["input_tokens"] == 21 and first["llm"]["usage"]["output_tokens"] == 7
    assert json.loads(first["llm"]["rendered_prompt"]) == [USER]
    assert json.loads(second["llm"]["rendered_prompt"]) == [
        USER, {"role": "assistant", "tool_calls": [{"id": "call_1", "name": "get_weather", "arguments": '{"city": "Paris"}'}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny in Paris"}]
    assert second["llm"]["response"] == "It is sunny in Paris." and "tool_calls" not in second["llm"]
    assert call["payload"] == {"call_id": "call_1", "tool": "get_weather", "args": {"city": "Paris"}}
    assert result["payload"]["ok"] is True and result["payload"]["output"] == "sunny in Paris"
    assert evs[5]["labels"] == {"reward": 1.0} and evs[7]["payload"]["success"] is True


@live
def test_real_openai_calls_become_training_rows(tmp_path: Path, server: ScriptedServer) -> None:
    RuntimeHook(tmp_path / "t", tracer="agentops").run(weather_agent(server.url), {"question": USER["content"]})
    res = export_traces(tmp_path / "t", tmp_path / "b")
    assert res.report["passed"], res.report["failures"]
    rows = _rows(res.path)
    assert len(rows) == 2
    # the arguments as the model wrote them (they were re-serialised: '{"city":"Paris"}')
    call = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}
    assistant = {"role": "assistant", "content": "", "tool_calls": [call]}
    tool = {"role": "tool", "content": "sunny in Paris", "tool_call_id": "call_1"}
    assert rows[0]["messages"] == [USER, assistant]
    assert rows[1]["messages"] == [USER, assistant, tool, {"role": "assistant", "content": "It is sunny in Paris."}]
    # the schemas the agent passed, in its key order (they were inferred from the arguments)
    assert [r["tools"] for r in rows] == [orjson.dumps([WEATHER]).decode()] * 2
    assert [r["meta"]["labels"]["tool_source"] for r in rows] == ["recorded", "recorded"]
    assert [r["meta"]["labels"].get("tool_ok") for r in rows] == [True, None]
    assert [r["meta"]["labels"]["context_messages"] for r in rows] == [1, 3]


@live
def test_a_reply_sent_back_as_the_client_object_is_filled_in(tmp_path: Path, server: ScriptedServer) -> None:
    """agentops reads prompt messages with ``"role" in msg``, which an OpenAI message object fails: the
    assistant turn is missing from the second call's attributes, and is taken from the first call's reply."""
    res = RuntimeHook(tmp_path / "t", tracer="agentops", keep_spans=True).run(
        weather_agent(server.url, append_object=True), {"question": USER["content"]})
    second = [s for s in res.raw_spans if s["name"] == "openai.chat.completion"][1]
    assert "gen_ai.prompt.1.role" not in second["attributes"] and "gen_ai.prompt.2.role" in second["attributes"]
    evs = [e for e in _events(res.run_dir) if e["event_type"] == "worker_action"]
    prompt = json.loads(evs[1]["llm"]["rendered_prompt"])
    assert prompt[1] == {"role": "assistant", "tool_calls": [{"id": "call_1", "name": "get_weather",
                                                               "arguments": '{"city": "Paris"}'}]}
    assert prompt[2]["tool_call_id"] == "call_1"


@live
def test_the_otel_tracer_does_not_record_client_calls(tmp_path: Path, server: ScriptedServer) -> None:
    """The default tracer instruments nothing: the calls happen, only the agent's own spans are recorded."""
    res = RuntimeHook(tmp_path / "t").run(weather_agent(server.url), {"question": USER["content"]})
    assert res.result == "It is sunny in Paris." and len(server.requests) == 2
    assert res.span_kinds == {"tool": 1, "reward": 1}
    with pytest.raises(ValueError, match="tracer='agentop': must be one of otel, agentops"):
        RuntimeHook(tmp_path, tracer="agentop")  # type: ignore[arg-type]


def test_stored_agentops_spans_import_to_the_same_rows(tmp_path: Path) -> None:
    """The recorded spans of that agent (tests/data/agentlightning), imported as a store dump, give the rows."""
    from tracebridge.importers.agentlightning.importer import import_agentlightning

    recorded = Path(__file__).resolve().parents[1] / "data" / "agentlightning" / "agentops_openai_spans.jsonl"
    rep = import_agentlightning([recorded], tmp_path / "t")
    assert rep.rollouts_imported == 1 and rep.reconciles
    assert rep.to_dict()["tool_schemas"] == {"recorded": 2, "missing": 0}
    res = export_traces(tmp_path / "t", tmp_path / "b")
    assert res.report["passed"], res.report["failures"]
    rows = _rows(res.path)
    assert [len(r["messages"]) for r in rows] == [2, 4] and rows[0]["messages"][0] == USER
    assert rows[0]["messages"][1]["tool_calls"] == [CALL]  # the arguments string as recorded
    assert [r["tools"] for r in rows] == [orjson.dumps([WEATHER]).decode()] * 2


def test_live_tests_in_their_own_process() -> None:
    """The four live tests above, in a child pytest: AgentOps must not stay in the suite's process."""
    if os.environ.get(CHILD) == "1":
        pytest.skip("this is the child")
    root = Path(__file__).resolve().parents[2]
    res = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", "not own_process",
                          __file__], cwd=root, env={**os.environ, CHILD: "1"}, capture_output=True, text=True,
                         timeout=300, check=False)
    assert res.returncode == 0 and "5 passed" in res.stdout, res.stdout[-4000:] + res.stderr[-2000:]
