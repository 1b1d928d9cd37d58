"""What current OpenClaw writes around the model's own turns: gateway-injected assistant messages,
context-free commands (``excludeFromContext``), extension receipts the model never saw, the
backup a repaired transcript leaves behind, leaf controls, side appends and reset boundaries,
encrypted lines, the model a router picked and OpenClaw's facts on ordinary messages.

Row shapes modelled on openclaw/openclaw: ``appendInjectedAssistantMessageToTranscript`` (provider
``openclaw``, model ``gateway-injected``, zero usage, stopReason ``stop`` or ``aborted``, and for a
context-free command such as ``/status`` ``excludeFromContext: true`` with
``__openclaw.contextFreeCommand``, on the user's message too); the nested-tool receipt (role
``custom``, customType ``openclaw.nested-tool.v1``, ``display: true``, ``excludeFromContext: true``,
empty content, the call in ``details``); the session manager's ``recoverCorruptSessionEntries``,
which copies an unreadable transcript to ``<file>.corrupt-<time>-<8 hex>.jsonl`` and rewrites the
transcript itself.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.export.test_openclaw_export import default_cfg, rows
from tests.importers.conftest import feed_rows
from tests.importers.test_openclaw_upstream import HEADER, USAGE, ZERO, T, _asst, _rows, _write
from tracebridge.export.pipeline import export_traces
from tracebridge.importers.openclaw import import_openclaw
from tracebridge.importers.openclaw.discover import discover
from tracebridge.importers.openclaw.mapping import SessionMapper
from tracebridge.importers.openclaw.session import session_id_from_name, session_record

CONTEXT_FREE = {"excludeFromContext": True, "__openclaw": {"contextFreeCommand": True}}


def _injected(text: str, stop: str = "stop", **extra: Any) -> dict[str, Any]:
    return _asst([{"type": "text", "text": text}], stop, model="gateway-injected", provider="openclaw",
                 usage=ZERO, api="openai-responses", **extra)


def _user(text: str, **extra: Any) -> dict[str, Any]:
    return {"type": "message", "message": {"role": "user", "content": [{"type": "text", "text": text}],
                                           "timestamp": 1772359200000, **extra}}


def test_a_gateway_injected_reply_is_no_model_turn():
    """Before: a ``gateway-injected`` message (stopReason ``stop``) became a worker action with a
    ``respond`` output, i.e. a training target, and ``openclaw/gateway-injected`` the session's model
    when it came first; an injected aborted partial set no failure class."""
    m = SessionMapper("r")
    evs = feed_rows(m, [HEADER] + _rows(
        {"type": "message", "message": _injected("[status] gateway restarted")},
        _user("what changed?"),
        {"type": "message", "message": _asst([{"type": "text", "text": "Nothing yet."}])},
        _user("go on"),
        {"type": "message", "message": _injected("Partial answ", "aborted", idempotencyKey="run-2:abort",
                                                 openclawAbort={"aborted": True, "origin": "user", "runId": "run-2"})},
    ))
    kinds = [(e["event_type"], e["payload"].get("source")) for e in evs]
    assert kinds == [("env_observation", "openclaw.session"), ("env_observation", "openclaw.injected"),
                     ("planner_input", None), ("worker_action", None), ("worker_output", None),
                     ("planner_input", None), ("env_observation", "openclaw.injected")]
    assert evs[1]["payload"]["observation"] == {"text": "[status] gateway restarted"}
    assert evs[-1]["payload"]["observation"] == {
        "text": "Partial answ", "idempotencyKey": "run-2:abort",
        "openclawAbort": {"aborted": True, "origin": "user", "runId": "run-2"}}
    assert m.first_model["model"] == "anthropic/claude-sonnet-4-5"
    assert m.counts["injected_messages"] == 2 and m.tokens == 12
    rec = session_record(m, session_id="s1", agent="main", index_entry=None, validate=True)
    assert rec["summary"]["failure_class"] == "aborted"
    assert rec["model_stack"]["worker"]["model"] == "anthropic/claude-sonnet-4-5"


def test_a_context_free_command_is_no_turn_and_no_goal():
    """Before: ``/status`` (kept out of the model's context by OpenClaw) became the session's goal and a
    planner turn, and the flag was only counted as drift."""
    m = SessionMapper("r")
    evs = feed_rows(m, [HEADER] + _rows(
        _user("/status", **CONTEXT_FREE),
        {"type": "message", "message": _injected("Model: sonnet · 12k tokens", **CONTEXT_FREE)},
        _user("summarise my inbox"),
        {"type": "message", "message": _asst([{"type": "text", "text": "3 new mails."}])},
    ))
    assert evs[1]["event_type"] == "env_observation"
    assert evs[1]["payload"] == {"observation": {"text": "/status", **CONTEXT_FREE},
                                 "source": "openclaw.context_free_message"}
    assert evs[2]["payload"]["observation"]["excludeFromContext"] is True
    assert evs[3]["event_type"] == "planner_input" and evs[3]["step"] == 0
    assert m.goal == "summarise my inbox" and m.kind == "chat"
    assert m.counts["context_free_messages"] == 1
    assert m.drift == {}


def test_an_extension_receipt_outside_the_context_keeps_its_flag():
    """Before: the receipt's ``excludeFromContext`` (and anything else beside content, display and
    details) was dropped without a drift count."""
    receipt = {"role": "custom", "customType": "openclaw.nested-tool.v1", "display": True,
               "excludeFromContext": True, "content": "", "timestamp": 1772359200000,
               "details": {"runId": "run-1", "parentToolCallId": "exec-1", "toolCallId": "n1", "toolName": "read",
                           "input": {"path": "a.txt"}, "result": {"content": [{"type": "text", "text": "ok"}]},
                           "isError": False}}
    m = SessionMapper("r")
    evs = feed_rows(m, [HEADER] + _rows({"type": "message", "message": {**receipt, "runId": "run-1"}}))
    obs = evs[1]["payload"]["observation"]
    assert evs[1]["payload"]["source"] == "openclaw.custom_message:openclaw.nested-tool.v1"
    assert obs["excludeFromContext"] is True and obs["details"]["toolName"] == "read"
    assert m.drift == {"message.custom.runId": 1}


def test_what_the_model_never_saw_is_not_in_the_training_prompt(tmp_path: Path):
    """Before: the ``/status`` command opened the prompt of the later turn, the injected status reply
    was a training target, and an extension message kept out of the context was a user message."""
    hidden = {"role": "custom", "customType": "note", "display": True, "excludeFromContext": True,
              "content": "internal receipt", "timestamp": 1772359200000}
    shown = {"role": "custom", "customType": "openclaw.runtime-context", "display": False,
             "content": "sender: ana", "timestamp": 1772359200000}
    transcript = [HEADER] + _rows(
        _user("/status", **CONTEXT_FREE),
        {"type": "message", "message": _injected("Model: sonnet", **CONTEXT_FREE)},
        {"type": "message", "message": hidden},
        {"type": "message", "message": shown},
        _user("summarise my inbox"),
        {"type": "message", "message": _asst([{"type": "text", "text": "3 new mails."}], usage=USAGE)})
    home = tmp_path / "home"
    _write(home / ".openclaw" / "agents" / "main" / "sessions" / "s1.jsonl", transcript)
    rep = import_openclaw([home], tmp_path / "traces")
    assert rep.reconciles and rep.lines_quarantined == 0
    res = export_traces(tmp_path / "traces", tmp_path / "bundles", default_cfg())
    (row,) = rows(res, "worker_sft")
    assert row["messages"] == [{"role": "user", "content": "sender: ana"},
                               {"role": "user", "content": "summarise my inbox"},
                               {"role": "assistant", "content": "3 new mails."}]
    session = json.loads((tmp_path / "traces" / "oc-s1" / "session.json").read_text())
    assert session["goal"]["text"] == "summarise my inbox"


def test_the_backup_of_a_repaired_transcript_is_no_second_session(tmp_path: Path):
    """Before: ``<id>.jsonl.corrupt-<time>-<hex>.jsonl`` was a live transcript of session
    ``<id>.jsonl.corrupt-…``: a second run of the same rows (its header was the unreadable part)."""
    sessions = tmp_path / ".openclaw" / "agents" / "main" / "sessions"
    body = _rows(_user("hi"), {"type": "message", "message": _asst([{"type": "text", "text": "hello"}])})
    _write(sessions / "s1.jsonl", [{**HEADER, "id": "s1"}] + body)
    backup = "s1.jsonl.corrupt-2026-03-01T10-00-00-000Z-0a1b2c3d.jsonl"
    (sessions / backup).write_text('{"type":"session","id":\n' + "\n".join(json.dumps(r) for r in body) + "\n")
    # a backup whose repaired transcript is gone is the only copy of its rows
    lone = "s2.jsonl.corrupt-2026-03-01T10-00-00-000Z-1b2c3d4e.jsonl"
    _write(sessions / lone, [{**HEADER, "id": "s2", "timestamp": T(0)}] + body)
    assert session_id_from_name(backup) == "s1"
    problems: list[str] = []
    found = {t.path.name: t for t in discover([tmp_path], problems)}
    assert sorted(found) == ["s1.jsonl", lone] and problems == []
    assert found[lone].archived == "corrupt"
    rep = import_openclaw([tmp_path], tmp_path / "traces")
    assert rep.reconciles and rep.runs_written == 2 and rep.files_skipped == 0
    assert sorted(p.name for p in (tmp_path / "traces").iterdir() if not p.name.startswith(".")) == ["oc-s1", "oc-s2"]


# --------------------------------------------------------------------------- navigation and resets
# openclaw/openclaw's session manager (src/agents/sessions/session-manager-*.ts, 2026): a leaf control
# {type: "leaf", targetId, appendParentId?, appendMode?} moves the visible leaf (its parent is the
# raw tail; OpenClaw resolves it to its target); an entry with appendMode "side" hangs off the visible
# path without moving it; a reset {type: "reset", reason, firstKeptEntryId?} is a context boundary
# like a compaction without a summary; a compaction may carry tokensAfter and __openclaw.


def _msg(rid: str, parent: str | None, message: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"type": "message", "id": rid, "parentId": parent, "timestamp": T(int(rid[1:])),
            "message": {"timestamp": 1772359200000, **message}, **extra}


def _say(text: str) -> dict[str, Any]:
    return _asst([{"type": "text", "text": text}])


def _navigated_session() -> list[dict[str, Any]]:
    """Rewind to the first answer (leaf control), a side note off the visible path, the leaf
    restored, a compaction with OpenClaw's fields, then a /new reset and a fresh exchange."""
    return [HEADER,
            _msg("e1", None, {"role": "user", "content": "first"}),
            _msg("e2", "e1", _say("one")),
            _msg("e3", "e2", {"role": "user", "content": "second"}),
            _msg("e4", "e3", _say("two")),
            {"type": "leaf", "id": "l1", "parentId": "e4", "timestamp": T(5), "targetId": "e2"},
            _msg("e6", "l1", {"role": "user", "content": "again"}),  # names the control: continues e2
            _msg("e7", "e6", _say("three")),
            {"type": "leaf", "id": "l2", "parentId": "e7", "timestamp": T(8), "targetId": "e7",
             "appendMode": "side"},
            _msg("e9", "e7", {"role": "user", "content": "side note"}, appendMode="side"),
            {"type": "leaf", "id": "l3", "parentId": "e9", "timestamp": T(10), "targetId": "e7"},
            {"type": "compaction", "id": "c1", "parentId": "e7", "timestamp": T(11), "summary": "counted to three",
             "firstKeptEntryId": "e6", "tokensBefore": 900, "tokensAfter": 120,
             "__openclaw": {"runId": "run-3"}},
            {"type": "reset", "id": "r1", "parentId": "c1", "timestamp": T(12), "reason": "new"},
            _msg("e13", "r1", {"role": "user", "content": "fresh start"}),
            _msg("e14", "e13", _say("hi"))]


def test_leaf_controls_side_appends_and_resets_keep_the_session_path():
    """Before: ``leaf`` and ``reset`` rows were unknown types (drift), a row naming a leaf control as
    parent was re-attached to the previous event, a side note moved the session's leaf, and
    ``appendMode``/``tokensAfter``/``__openclaw`` were dropped as drift."""
    m = SessionMapper("r")
    evs = {e["event_id"]: e for e in feed_rows(m, _navigated_session())}
    assert m.drift == {}
    assert m.counts["leaf_controls"] == 3 and m.counts["resets"] == 1 and m.counts["compactions"] == 1
    assert evs["r:l1"]["payload"] == {"observation": {"targetId": "e2"}, "source": "openclaw.leaf"}
    # it hangs off its target (e2's last event), as OpenClaw resolves it, and so does the row naming it
    assert evs["r:l1"]["parent_event_id"] == evs["r:e6"]["parent_event_id"] == "r:e2.1"
    assert evs["r:r1"]["payload"] == {"observation": {"reason": "new"}, "source": "openclaw.reset"}
    assert evs["r:c1"]["payload"]["observation"]["tokensAfter"] == 120
    assert evs["r:c1"]["payload"]["observation"]["__openclaw"] == {"runId": "run-3"}
    assert evs["r:e9"]["event_type"] == "planner_input"
    rec = session_record(m, session_id="s1", agent="main", index_entry=None, validate=True)
    assert rec["runtime_config"]["extra"]["leaf_entry_id"] == "e14" and rec["runtime_config"]["extra"]["branches"] >= 2


def test_a_side_note_never_moves_the_leaf():
    m = SessionMapper("r")
    feed_rows(m, _navigated_session()[:10])  # ends with the side note
    rec = session_record(m, session_id="s1", agent="main", index_entry=None, validate=True)
    assert rec["runtime_config"]["extra"]["leaf_entry_id"] == "e7"


def test_a_reset_ends_the_context_and_the_rewound_path_is_left(tmp_path: Path):
    """Before: the reply after ``/new`` was trained with the whole conversation before the reset as
    its prompt, and the rewind (a leaf control) left "second"/"two" in the context of "three"."""
    home = tmp_path / "home"
    _write(home / ".openclaw" / "agents" / "main" / "sessions" / "s1.jsonl", _navigated_session())
    rep = import_openclaw([home], tmp_path / "traces")
    assert rep.reconciles and rep.lines_quarantined == 0
    res = export_traces(tmp_path / "traces", tmp_path / "bundles", default_cfg())
    by_target = {r["messages"][-1]["content"]: r for r in rows(res, "worker_sft")}
    assert by_target["three"]["messages"] == [{"role": "user", "content": "first"},
                                              {"role": "assistant", "content": "one"},
                                              {"role": "user", "content": "again"},
                                              {"role": "assistant", "content": "three"}]
    assert by_target["hi"]["messages"] == [{"role": "user", "content": "fresh start"},
                                           {"role": "assistant", "content": "hi"}]
    assert by_target["two"]["meta"]["labels"]["abandoned_path"] is True
    assert not any(m["content"] == "side note" for r in by_target.values() for m in r["messages"])


def test_encrypted_transcript_lines_are_quarantined_as_encrypted(tmp_path: Path):
    """OpenClaw's transcript encryption (src/config/sessions/line-encryption.ts, file-encryption.ts)
    writes ``ENCRYPTED:<iv>:<tag>:<data>`` lines, or a whole file after an ``OPENCLAW_ENCRYPTED_V1``
    line. Before: each was "invalid JSON: ..." with no word of encryption."""
    sessions = tmp_path / ".openclaw" / "agents" / "main" / "sessions"
    sessions.mkdir(parents=True)
    (sessions / "s1.jsonl").write_text(json.dumps({**HEADER, "id": "s1"}) + "\nENCRYPTED:aXY=:dGFn:ZGF0YQ==\n")
    (sessions / "s2.jsonl").write_text("OPENCLAW_ENCRYPTED_V1\naXY=:dGFn:ZGF0YQ==\n")
    rep = import_openclaw([tmp_path], tmp_path / "traces")
    assert rep.reconciles and rep.lines_read == 4 and rep.lines_quarantined == 3
    s1, s2a, s2b = sorted(rep.quarantine_samples)
    assert s1.startswith(f"{sessions / 's1.jsonl'}:2: <line>: encrypted transcript line")
    assert s2a.startswith(f"{sessions / 's2.jsonl'}:1: <line>: encrypted transcript")
    assert "decrypt" in s1 and "decrypt" in s2a and s2b.startswith(f"{sessions / 's2.jsonl'}:2: <line>: encrypted")


def test_the_model_a_router_picked_is_kept():
    """OpenClaw's assistant messages name the model that answered when a router picked it
    (``responseModel``, src/llm/types.ts). Before: only counted as drift, so an OpenRouter ``auto``
    turn did not say which model wrote it."""
    m = SessionMapper("r")
    evs = feed_rows(m, [HEADER] + _rows(
        _user("hi"),
        {"type": "message", "message": _asst([{"type": "text", "text": "hello"}], model="auto", provider="openrouter",
                                             responseModel="anthropic/claude-sonnet-4.5", responseId="gen-1")},
        {"type": "message", "message": _asst([{"type": "text", "text": "again"}], model="auto", provider="openrouter",
                                             responseModel={"id": "x"})}))
    first, second = (e["llm"] for e in evs if e["event_type"] == "worker_action")
    assert first["model"] == "openrouter/auto" and first["params"]["response_model"] == "anthropic/claude-sonnet-4.5"
    assert "response_model" not in second["params"] and first["config_hash"] != second["config_hash"]
    assert first["params"]["response_id"] == "gen-1"  # kept since the follow-up below
    assert m.drift == {"message.assistant.responseModel:not_a_string": 1}


SHOWN = [{"type": "text", "text": "Here is the chart."},
         {"type": "image", "data": "iVBORw0KGgo" * 50, "mimeType": "image/png"}]


def test_openclaw_facts_on_ordinary_messages_are_kept_and_training_uses_the_model_content(tmp_path):
    """Current OpenClaw adds to ordinary messages ``__openclaw`` (its message id, seq, media),
    ``openclawDelivery`` (media a channel was sent), ``openclawDisplayContent`` (what the chat UI shows
    instead of ``content``) and, to a model's message, ``responseId`` and ``diagnostics``
    (src/llm/types.ts). Before: each was only counted as drift and dropped. Now they are kept (a
    model turn's in its ``llm.params``, outside the config hash; a user turn's in its observation),
    images in display content as placeholders, and the exported prompt and completion are still the
    model's ``content``, never the display text."""
    facts = {"__openclaw": {"id": "m-7", "seq": 7}, "openclawDelivery": {"mediaUrls": ["./chart.png"]},
             "openclawDisplayContent": SHOWN}
    diag = [{"kind": "retry", "message": "overloaded, retried once"}]
    session = [HEADER] + _rows(
        _user("plot it", __openclaw={"id": "u-6", "seq": 6}, openclawDisplayContent=[{"type": "text", "text": "SHOWN"}]),
        {"type": "message", "message": _asst([{"type": "text", "text": "Plotted."}], responseId="msg_01", diagnostics=diag,
                                             **facts)},
        _user("thanks"),
        {"type": "message", "message": _asst([{"type": "text", "text": "You're welcome."}])})
    m = SessionMapper("r")
    evs = feed_rows(m, session)

    assert m.drift == {}
    turn = next(e for e in evs if e["event_type"] == "planner_input")
    assert turn["payload"]["goal"] == "plot it"
    assert turn["payload"]["observation"] == {"openclaw": {"id": "u-6", "seq": 6},
                                              "display_content": [{"type": "text", "text": "SHOWN"}]}
    first, second = (e["llm"] for e in evs if e["event_type"] == "worker_action")
    assert first["response"] == "Plotted." and first["params"]["response_id"] == "msg_01"
    assert first["params"]["diagnostics"] == diag and first["params"]["delivery"] == {"mediaUrls": ["./chart.png"]}
    assert first["params"]["openclaw"] == {"id": "m-7", "seq": 7}
    shown = first["params"]["display_content"]
    assert shown[0] == SHOWN[0] and shown[1]["type"] == "image" and "data" not in shown[1]
    assert first["config_hash"] == second["config_hash"] and "response_id" not in second["params"]

    sessions = tmp_path / "home" / "agents" / "main" / "sessions"
    _write(sessions / "s1.jsonl", session)
    rep = import_openclaw([tmp_path / "home"], tmp_path / "traces")
    assert rep.drift == {} and rep.reconciles
    res = export_traces(tmp_path / "traces", tmp_path / "bundles", default_cfg())
    text = json.dumps(rows(res, "worker_sft"))
    assert "Plotted." in text and "plot it" in text and "SHOWN" not in text and "Here is the chart" not in text


def test_openclaw_facts_on_a_tool_result_are_kept_beside_it():
    """Before: ``__openclaw`` (and OpenClaw's other message facts) on a tool result were counted as
    drift (``message.toolResult.__openclaw``) and dropped, while user and model messages kept them.
    Now they are an observation hanging off the result; the row's children still follow the result."""
    facts = {"__openclaw": {"id": "t-3", "seq": 3}, "openclawDisplayContent": SHOWN}
    m = SessionMapper("r")
    evs = feed_rows(m, [HEADER] + _rows(
        _user("list files"),
        {"type": "message", "message": _asst([{"type": "toolCall", "id": "c1", "name": "bash",
                                               "arguments": {"command": "ls"}}], "toolUse")},
        {"type": "message", "message": {"role": "toolResult", "toolCallId": "c1", "toolName": "bash",
                                        "content": [{"type": "text", "text": "a.txt"}], "isError": False,
                                        "timestamp": 1772359200000, **facts}},
        {"type": "message", "message": _asst([{"type": "text", "text": "One file."}])}))

    assert m.drift == {}
    result, kept, answer = evs[4], evs[5], evs[6]
    assert result["event_type"] == "worker_tool_result" and result["payload"]["output"] == "a.txt"
    assert kept["event_id"] == "r:e3.1" and kept["parent_event_id"] == result["event_id"]
    assert kept["payload"]["source"] == "openclaw.tool_result"
    assert kept["payload"]["observation"]["openclaw"] == {"id": "t-3", "seq": 3}
    assert "data" not in kept["payload"]["observation"]["display_content"][1]
    assert answer["parent_event_id"] == result["event_id"]
