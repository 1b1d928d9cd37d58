"""What current OpenClaw records of a model call beside its text (packages/llm-core ``AssistantMessage``):
the provider's HTTP status, error code and type, Retry-After and body of a failed call
(``errorStatus``, ``errorCode``, ``errorType``, ``errorRetryAfterMs``, ``errorBody``), the run turn
(``turnId``) and the provider's opaque replay state (``providerReplay``).

Before: each was only counted as drift and dropped, and a failed call's kind came from its
``errorMessage`` alone, so a 429 whose message did not say "429" or "rate limit" was a
``runtime_error`` (and so the session's failure class).
"""

from __future__ import annotations

import json
from pathlib import Path

import orjson

from tests.export.test_openclaw_export import default_cfg, rows
from tests.importers.openclaw_sessions import ZERO, SessionBuilder
from tracebridge.export.pipeline import export_traces
from tracebridge.importers.openclaw import import_openclaw

REPLAY = {"v": 1, "type": "anthropic-compaction", "data": "OPAQUE-REPLAY-STATE"}
BODY = '{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}' + " " * 5000


def _home(tmp_path: Path) -> Path:
    sessions = tmp_path / "home" / "agents" / "main" / "sessions"
    b = SessionBuilder("calls-1")
    b.user("summarise the report")
    b.assistant([], "error", usage=ZERO, errorMessage="Provider returned an error", errorStatus=429,
                errorType="rate_limit_error", errorCode="rate_limited", errorRetryAfterMs=30000, errorBody=BODY,
                turnId="turn-1")
    b.say("Here is the summary.", turnId="turn-1", providerReplay=REPLAY)
    b.write(sessions / "calls-1.jsonl")
    b = SessionBuilder("calls-2")
    b.user("and the appendix?")
    b.assistant([], "error", usage=ZERO, errorMessage="upstream failed", errorStatus=504)
    b.write(sessions / "calls-2.jsonl")
    return tmp_path / "home"


def _events(out: Path, run: str) -> list[dict]:
    return [orjson.loads(x) for x in (out / run / "events.jsonl").read_bytes().splitlines()]


def test_a_failed_calls_status_code_and_type_are_kept_and_classify_it(tmp_path):
    out = tmp_path / "traces"
    rep = import_openclaw([_home(tmp_path)], out)
    assert rep.reconciles and rep.drift == {}  # every field is mapped or dropped on purpose

    evs = _events(out, "oc-calls-1")
    error = next(e for e in evs if e["event_type"] == "episode_error")
    assert error["payload"]["kind"] == "rate_limit"  # from errorStatus 429: the message does not say so
    failed, answered = (e["llm"]["params"] for e in evs if e["event_type"] == "worker_action")
    assert failed["error"] == {"status": 429, "code": "rate_limited", "type": "rate_limit_error",
                               "retry_after_ms": 30000, "body": BODY[:2000]}
    assert failed["turn_id"] == answered["turn_id"] == "turn-1" and "error" not in answered
    assert b"OPAQUE-REPLAY-STATE" not in (out / "oc-calls-1" / "events.jsonl").read_bytes()

    timeout = next(e for e in _events(out, "oc-calls-2") if e["event_type"] == "episode_error")
    assert timeout["payload"]["kind"] == "timeout"  # a 504, though its message names no timeout
    session = json.loads((out / "oc-calls-2" / "session.json").read_text())
    assert session["summary"]["failure_class"] == "timeout"


def test_the_failed_call_is_no_training_target_and_no_replay_state_reaches_the_rows(tmp_path):
    out = tmp_path / "traces"
    import_openclaw([_home(tmp_path)], out)
    res = export_traces(out, tmp_path / "bundles", default_cfg())
    sft = [r for r in rows(res, "worker_sft") if r["meta"]["run_id"] == "oc-calls-1"]
    targets = [m["content"] for r in sft for m in r["messages"] if m["role"] == "assistant"]
    assert targets == ["Here is the summary."]
    text = json.dumps(rows(res, "worker_sft"))
    assert "OPAQUE-REPLAY-STATE" not in text and "rate_limit_error" not in text


def test_a_dropped_connection_is_no_abort(tmp_path):
    """A call whose stream the network cut (undici's "terminated", stopReason ``error``) or that could not
    connect: before, "terminated" made the kind ``aborted`` (a user's /stop) and a connection error a
    ``runtime_error``; OpenClaw's own failover classes them with timeouts. A real abort stays ``aborted``."""
    sessions = tmp_path / "home" / "agents" / "main" / "sessions"
    cases = {"net-1": ("error", "terminated"), "net-2": ("error", "Connection error."),
             "net-3": ("error", "TypeError: fetch failed"), "net-4": ("aborted", "Request was aborted")}
    for sid, (stop, message) in cases.items():
        b = SessionBuilder(sid)
        b.user("check the build")
        b.assistant([], stop, usage=ZERO, errorMessage=message)
        b.write(sessions / f"{sid}.jsonl")
    out = tmp_path / "traces"
    assert import_openclaw([tmp_path / "home"], out).reconciles
    kinds = {sid: json.loads((out / f"oc-{sid}" / "session.json").read_text())["summary"]["failure_class"]
             for sid in cases}
    assert kinds == {"net-1": "timeout", "net-2": "timeout", "net-3": "timeout", "net-4": "aborted"}
