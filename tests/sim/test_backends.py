"""The OpenAI-compatible HTTP backend against a real local server on 127.0.0.1, alone and as the
backend of all three roles in an episode (valid replies, garbage, server errors, timeouts)."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.sim.conftest import read_run, spec
from tracebridge.schema.validate import Thresholds, validate_root
from tracebridge.sim.backends import BackendError, OpenAIBackend
from tracebridge.sim.episode import run_episode
from tracebridge.sim.model_policies import ModelPlanner, ModelVerifier, ModelWorker
from tracebridge.sim.policies import RoleSet

GOOD = {
    "planner": json.dumps({"plan": [{"description": "compute", "tool": "calculate", "args": {"expression": "6*7"}}],
                           "rationale": "one step", "confidence": 0.5}),
    "worker": '<tool_call>{"name": "calculate", "arguments": {"expression": "6*7"}}</tool_call>',
    "verifier": "verdict: end\nfeedback: computed\nrisks: none_seen",
}


class Server:
    """A tiny /v1/chat/completions server; ``mode`` picks how it answers."""

    def __init__(self) -> None:
        self.mode = "good"
        self.requests: list[tuple[dict, dict]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):  # keep test output clean
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append((body, dict(self.headers)))
                if self.path != "/v1/chat/completions":
                    return self._send(404, b"{}")
                if outer.mode == "error":
                    return self._send(500, b'{"error": "overloaded"}')
                if outer.mode == "slow":
                    time.sleep(1.0)
                if outer.mode == "notjson":
                    return self._send(200, b"<html>")
                role = next(r for r in GOOD if f"You are the {r}" in body["messages"][0]["content"])
                msg = {"role": "assistant", "content": GOOD[role] if outer.mode == "good" else "lorem ipsum {"}
                if outer.mode == "native" and role == "worker":
                    msg = {"role": "assistant", "content": None, "tool_calls": [{"id": "x", "type": "function",
                           "function": {"name": "calculate", "arguments": '{"expression": "6*7"}'}}]}
                out = {"choices": [{"message": msg}], "usage": {"prompt_tokens": 11, "completion_tokens": 5}}
                return self._send(200, json.dumps(out).encode())

            def _send(self, code, data):
                try:
                    self.send_response(code)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout test)
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()


@pytest.fixture(scope="module")
def server():
    srv = Server()
    yield srv
    srv.httpd.shutdown()
    srv.httpd.server_close()


@pytest.fixture(autouse=True)
def _reset(server):
    server.mode = "good"
    server.requests.clear()


def _roles(server, timeout_s=5.0):
    backend = OpenAIBackend(server.url, "served-model", api_key="sk-test", max_tokens=32, timeout_s=timeout_s)
    return lambda rngs: RoleSet(ModelPlanner(backend, rngs["planner"]), ModelWorker(backend, rngs["worker"]),
                                ModelVerifier(backend, rngs["verifier"]))


def test_request_shape_and_reply(server):
    b = OpenAIBackend(server.url + "/v1/", "served-model", api_key="sk-test", max_tokens=16, temperature=0.3)
    tools = [{"type": "function", "function": {"name": "calculate", "parameters": {}}}]
    call = b.chat([{"role": "system", "content": "You are the worker."}, {"role": "user", "content": "go"}],
                  tools=tools, seed=5)
    body, headers = server.requests[-1]
    assert body == {"model": "served-model", "messages": body["messages"], "max_tokens": 16, "temperature": 0.3,
                    "tools": tools, "seed": 5}
    assert headers["Authorization"] == "Bearer sk-test"
    assert call.response == GOOD["worker"] and call.usage["input_tokens"] == 11 and call.usage["output_tokens"] == 5
    assert call.prompt == body["messages"] and call.model == "served-model"


def test_native_tool_calls_become_text(server):
    server.mode = "native"
    call = OpenAIBackend(server.url, "m").chat([{"role": "system", "content": "You are the worker."}])
    assert call.response == '<tool_call>{"name": "calculate", "arguments": {"expression": "6*7"}}</tool_call>'


@pytest.mark.parametrize("mode, kind", [("error", "runtime_error"), ("notjson", "runtime_error"),
                                        ("slow", "timeout")])
def test_transport_failures_raise_backend_error(server, mode, kind):
    server.mode = mode
    with pytest.raises(BackendError) as exc:
        OpenAIBackend(server.url, "m", timeout_s=0.3).chat([{"role": "system", "content": "You are the worker."}])
    assert exc.value.kind == kind


def test_unreachable_endpoint_is_a_backend_error():
    with pytest.raises(BackendError):
        OpenAIBackend("http://127.0.0.1:9", "m", timeout_s=1).chat([{"role": "user", "content": "hi"}])


def test_episode_with_http_roles_records_model_calls(server, tmp_path):
    r = run_episode(spec("calc", 0), tmp_path, roles=_roles(server))
    assert not r.crashed and r.invalid_outputs == 0 and r.verdicts == {"end": 1}
    events, session = read_run(tmp_path, r.run_id)
    llm = {e["event_type"]: e["llm"] for e in events if "llm" in e}
    assert set(llm) == {"planner_output", "worker_action", "verifier_output"}
    assert json.loads(llm["planner_output"]["rendered_prompt"])[0]["role"] == "system"
    assert llm["worker_action"]["toolset_hash"] and llm["verifier_output"]["response"] == GOOD["verifier"]
    assert session["model_stack"]["worker"]["model"] == "served-model" and session["summary"]["tokens"] == 3 * 16
    assert "sk-test" not in (tmp_path / r.run_id / "events.jsonl").read_text()
    assert validate_root(tmp_path, Thresholds(100.0, 100.0, 0.0)).passed


def test_garbage_replies_become_invalid_output_errors(server, tmp_path):
    server.mode = "garbage"
    r = run_episode(spec("docs", 0, max_steps=3), tmp_path, roles=_roles(server))
    assert not r.crashed and r.invalid_outputs == 3 and r.failure_class == "max_steps"
    events, _ = read_run(tmp_path, r.run_id)
    errs = [e for e in events if e["event_type"] == "episode_error" and e["payload"]["kind"] == "invalid_output"]
    assert len(errs) == 3 and all(e["llm"]["response"] == "lorem ipsum {" for e in errs)
    assert validate_root(tmp_path, Thresholds(100.0, 100.0, 0.0)).passed


def test_server_error_ends_the_episode_without_crashing_the_caller(server, tmp_path):
    server.mode = "error"
    r = run_episode(spec("sql", 0), tmp_path, roles=_roles(server))
    assert r.crashed and r.failure_class == "backend_error"
    events, _ = read_run(tmp_path, r.run_id)
    assert [e["event_type"] for e in events[-2:]] == ["episode_error", "episode_end"]
    assert events[-2]["payload"]["kind"] == "runtime_error" and events[-2]["payload"]["recoverable"] is False
    assert validate_root(tmp_path, Thresholds(100.0, 100.0, 0.0)).passed
