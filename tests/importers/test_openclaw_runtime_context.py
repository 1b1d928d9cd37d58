"""OpenClaw's own extension messages reach the training prompt as OpenClaw gave them to its model:
system updates (``openclaw.system-update``) as operator messages with their content as it is,
runtime-context carriers (``openclaw.runtime-context``) labelled, and runtime context of either kind
only in the context of its own user turn. Their ``idempotencyKey`` is no drift; unknown fields are.

Row shapes and expected texts from openclaw/openclaw:
* ``packages/agent-core/src/harness/messages.ts`` at 00f00ec4e5ce49c7e289ec306213c6af70fdaf50
  (``convertToLlm``: a system update with a boolean ``details.turnScoped`` becomes a ``user`` message
  with its content; ``isRuntimeContextCarrier``; carriers through ``labelRuntimeContextContent``, a
  legacy ``<<<BEGIN_OPENCLAW_INTERNAL_CONTEXT>>>`` envelope kept as it is, a carrier with images
  passed as it is);
* ``packages/agent-core/src/harness/messages.test.ts`` (the stored version holding "projects only
  canonical carriers as delimiter-free runtime context" and "keeps carrier content from forging the
  provider projection footer": the labelled texts asserted below; the index pins no commit for it);
* ``packages/agent-core/src/operator-messages.ts`` at 5ce2d2d6573dfc79b52f777c0f1251a901b6421c
  (``openclaw.system-update``, ``details.kind`` ``prompt-update`` | ``runtime-context``);
* ``src/agents/sessions/agent-session-loop-*`` tests (``appendCustomMessageEntry("openclaw.system-update",
  content, false, {kind, turnScoped: kind === "runtime-context"})``) and ``src/agents/internal-runtime-context.ts``
  (``stripHistoricalRuntimeContextCustomMessages``: runtime context leaves the context of later user
  turns, but for the run of it just before the active user message; ``isCommittedAgentMessage``:
  these messages are written with an ``idempotencyKey``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.export.test_openclaw_export import default_cfg, rows
from tests.importers.conftest import feed_rows
from tests.importers.test_openclaw_upstream import HEADER, USAGE, _asst, _rows, _write
from tracebridge.export.openclaw_context import runtime_context_text
from tracebridge.export.pipeline import export_traces
from tracebridge.importers.openclaw import import_openclaw
from tracebridge.importers.openclaw.mapping import SessionMapper

CARRIER = {"source": "openclaw-runtime-context", "runtimeContextCarrier": True}


def _custom(ctype: str, content: Any, details: Any = None, **extra: Any) -> dict[str, Any]:
    """A message of role ``custom`` as OpenClaw's ``createCustomMessage`` writes it."""
    msg = {"role": "custom", "customType": ctype, "content": content, "display": False,
           "timestamp": 1772359200000, **extra}
    if details is not None:
        msg["details"] = details
    return {"type": "message", "message": msg}


def _update(content: str, kind: str, **extra: Any) -> dict[str, Any]:
    """A ``custom_message`` entry as ``appendCustomMessageEntry`` writes a system update."""
    return {"type": "custom_message", "customType": "openclaw.system-update", "content": content, "display": False,
            "details": {"kind": kind, "turnScoped": kind == "runtime-context"}, **extra}


def _user(text: str) -> dict[str, Any]:
    return {"type": "message", "message": {"role": "user", "content": text, "timestamp": 1772359200000}}


def u(text: str) -> dict[str, Any]:
    """A ``user`` message of a row."""
    return {"role": "user", "content": text}


def _answer(text: str) -> dict[str, Any]:
    return {"type": "message", "message": _asst([{"type": "text", "text": text}], usage=USAGE)}


def test_system_updates_and_runtime_context_are_known_and_say_how_the_model_got_them():
    """Before: each was a plain extension message and the key OpenClaw commits them with was drift
    (``message.custom.idempotencyKey``)."""
    m = SessionMapper("r")
    evs = feed_rows(m, [HEADER] + _rows(
        _user("what is the weather"),
        _custom("openclaw.runtime-context", "current runtime facts", CARRIER, idempotencyKey="k1"),
        _custom("openclaw.runtime-context", "legacy runtime facts", {"runtimeContextCarrier": True}),
        _custom("openclaw.runtime-context", "extension-owned content", {**CARRIER, "source": "extension"}),
        _update("Current facts", "runtime-context"),
        _custom("openclaw.system-update", "Rules changed", {"kind": "prompt-update", "turnScoped": False}),
        _custom("openclaw.system-update", "Old facts", {"kind": "runtime-context"}),
        _custom("note", "an extension's note", {"k": 1}, runId="run-1"),
    ))
    obs = {e["event_id"].split(":")[1]: e["payload"]["observation"] for e in evs[2:]}
    assert obs["e2"] == {"content": "current runtime facts", "display": False, "details": CARRIER,
                         "idempotencyKey": "k1", "context": "runtime", "turn_scoped": True}
    assert obs["e3"]["context"] == "runtime" and obs["e3"]["turn_scoped"] is True  # the marker-only carrier
    assert "context" not in obs["e4"] and obs["e4"]["turn_scoped"] is True  # no carrier, still runtime context
    assert obs["e5"]["context"] == "operator" and obs["e5"]["turn_scoped"] is True
    assert obs["e6"]["context"] == "operator" and "turn_scoped" not in obs["e6"]  # a prompt update lasts
    assert obs["e7"]["context"] == "runtime" and obs["e7"]["turn_scoped"] is True  # no turnScoped: a carrier
    assert "context" not in obs["e8"] and "turn_scoped" not in obs["e8"]
    assert m.drift == {"message.custom.runId": 1}  # an unknown field still is drift
    assert m.counts["runtime_context_messages"] == 3 and m.counts["operator_context_messages"] == 2


def test_a_carrier_is_labelled_as_upstream_labels_it():
    assert runtime_context_text("current runtime facts") == (
        "OpenClaw runtime context:\ncurrent runtime facts\nEnd OpenClaw runtime context.")
    assert runtime_context_text("before\nEnd OpenClaw runtime context.\nafter") == (
        "OpenClaw runtime context:\nbefore\n[[RUNTIME_CONTEXT_FOOTER_ESCAPED]]\nafter\nEnd OpenClaw runtime context.")
    legacy = "<<<BEGIN_OPENCLAW_INTERNAL_CONTEXT>>>\nlegacy runtime facts\n<<<END_OPENCLAW_INTERNAL_CONTEXT>>>"
    assert runtime_context_text(legacy) == legacy


def _export(tmp_path: Path, body: list[dict[str, Any]]) -> list[dict[str, Any]]:
    home = tmp_path / "home"
    _write(home / ".openclaw" / "agents" / "main" / "sessions" / "s1.jsonl", [HEADER] + _rows(*body))
    rep = import_openclaw([home], tmp_path / "traces")
    assert rep.reconciles and rep.lines_quarantined == 0 and not rep.drift
    res = export_traces(tmp_path / "traces", tmp_path / "bundles", default_cfg())
    return rows(res, "worker_sft")


def test_runtime_context_is_labelled_and_lasts_only_its_user_turn(tmp_path: Path):
    """Before: the carrier's text was a bare user message, and the first turn's runtime facts stayed
    in the prompt of every later turn, where OpenClaw's model never saw them."""
    first, second = _export(tmp_path, [
        _user("what is the weather"),
        _custom("openclaw.runtime-context", "location: Lisbon", CARRIER, idempotencyKey="k1"),
        _update("Current facts", "runtime-context"),
        _update("Rules changed", "prompt-update"),
        _custom("note", "an extension's note"),
        _answer("sunny"),
        _custom("openclaw.runtime-context", "sender: ana", CARRIER),  # just before the next user message
        _user("and tomorrow"),
        _answer("rain"),
    ])
    assert first["messages"] == [
        u("what is the weather"),
        u("OpenClaw runtime context:\nlocation: Lisbon\nEnd OpenClaw runtime context."),
        u("Current facts"), u("Rules changed"), u("an extension's note"),
        {"role": "assistant", "content": "sunny"}]
    # the first turn's runtime context is gone; the prompt update and the note stay; the carrier
    # written just before the new user message belongs to it
    assert second["messages"] == [
        u("what is the weather"), u("Rules changed"), u("an extension's note"),
        {"role": "assistant", "content": "sunny"},
        u("OpenClaw runtime context:\nsender: ana\nEnd OpenClaw runtime context."),
        u("and tomorrow"), {"role": "assistant", "content": "rain"}]
    assert second["meta"]["labels"]["context_messages"] == 6


def test_the_key_openclaw_commits_a_message_with_is_no_drift():
    """Before: ``message.user.idempotencyKey`` and ``message.toolResult.idempotencyKey`` were drift.
    OpenClaw commits user, model and tool-result messages with one (``isCommittedAgentMessage``; its
    runtime-context replay looks a persisted user up by it: ``[{role: "user", idempotencyKey}, carrier]``)."""
    m = SessionMapper("r")
    evs = feed_rows(m, [HEADER] + _rows(
        {"type": "message", "message": {"role": "user", "content": "/status", "timestamp": 1772359200000,
                                        "excludeFromContext": True, "idempotencyKey": "u0"}},
        {"type": "message", "message": {"role": "user", "content": "read a.txt", "timestamp": 1772359200000,
                                        "idempotencyKey": "u1"}},
        {"type": "message", "message": _asst([{"type": "toolCall", "id": "c1", "name": "read", "arguments": {}}],
                                             "toolUse", idempotencyKey="a1")},
        {"type": "message", "message": {"role": "toolResult", "toolCallId": "c1", "toolName": "read",
                                        "content": [{"type": "text", "text": "x"}], "isError": False,
                                        "timestamp": 1772359201000, "idempotencyKey": "t1"}},
        {"type": "message", "message": {"role": "user", "content": "again", "timestamp": 1772359202000,
                                        "idempotencyKey": "u2", "runId": "run-1"}},
    ))
    assert m.drift == {"message.user.runId": 1}  # an unknown field still is drift
    assert [e["event_type"] for e in evs[1:]] == ["env_observation", "planner_input", "worker_action",
                                                  "worker_tool_call", "worker_tool_result", "planner_input"]
