"""Conformance with the transcripts OpenClaw writes today: every entry type and message role of its
writer maps without drift, OpenClaw's own assistant messages are no model turns, branches are
counted with the session's leaf, and discovery skips OpenClaw's non-transcript files.

The rows are hand-written in the upstream shapes: entries from pi-coding-agent's ``SessionManager``
(badlogic/pi-mono ``packages/coding-agent/src/core/session-manager.ts``: ``SessionHeader``,
``*Entry`` types, ``branchWithSummary``), message roles from its ``core/messages.ts`` and content
blocks from ``packages/ai/src/types.ts``; the delivery mirror from openclaw/openclaw
``src/config/sessions/transcript.ts``; file names from its ``src/config/sessions/artifacts.ts``
and ``paths.ts``; the agent database from its ``src/state/openclaw-agent-schema.generated.ts``.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import orjson

from tests.importers.conftest import feed_rows
from tracebridge.importers.openclaw import import_openclaw
from tracebridge.importers.openclaw.discover import discover
from tracebridge.importers.openclaw.mapping import SessionMapper
from tracebridge.importers.openclaw.session import session_record

T = "2026-03-01T10:00:{:02d}.000Z".format
USAGE = {"input": 10, "output": 2, "cacheRead": 0, "cacheWrite": 0, "totalTokens": 12,
         "cost": {"input": 0.1, "output": 0.1, "cacheRead": 0, "cacheWrite": 0, "total": 0.2}}
ZERO = {"input": 0, "output": 0, "cacheRead": 0, "cacheWrite": 0, "totalTokens": 0,
        "cost": {"input": 0, "output": 0, "cacheRead": 0, "cacheWrite": 0, "total": 0}}


def _asst(content, stop="stop", model="claude-sonnet-4-5", provider="anthropic", usage=USAGE, **extra):
    return {"role": "assistant", "content": content, "api": "anthropic-messages", "provider": provider,
            "model": model, "usage": usage, "stopReason": stop, "timestamp": 1772359200000, **extra}


def _rows(*rows: dict) -> list[dict]:
    """Entries chained as the writer chains them: each the child of the one before (unless given)."""
    out, prev = [], None
    for i, r in enumerate(rows, 1):
        row = {"id": f"e{i}", "parentId": prev, "timestamp": T(i), **r}
        prev = row["id"]
        out.append(row)
    return out


HEADER = {"type": "session", "version": 3, "id": "s1", "timestamp": T(0), "cwd": "/home/u",
          "parentSession": "/home/u/.openclaw/agents/main/sessions/s0.jsonl"}


def test_every_entry_type_and_role_of_the_writer_maps_without_drift():
    m = SessionMapper("r")
    evs = feed_rows(m, [HEADER] + _rows(
        {"type": "thinking_level_change", "thinkingLevel": "high"},
        {"type": "model_change", "provider": "anthropic", "modelId": "claude-sonnet-4-5"},
        {"type": "message", "message": {"role": "user", "timestamp": 1772359200000, "content": [
            {"type": "text", "text": "what is in this picture?"},
            {"type": "image", "data": "aGVsbG8=", "mimeType": "image/png"}]}},
        {"type": "message", "message": _asst([
            {"type": "thinking", "thinking": "look first", "thinkingSignature": "sig"},
            {"type": "thinking", "thinking": "", "thinkingSignature": "opaque", "redacted": True},
            {"type": "text", "text": "reading", "textSignature": "msg_1"},
            {"type": "toolCall", "id": "c1", "name": "read", "arguments": {"path": "a.png"},
             "thoughtSignature": "g"}], "toolUse")},
        {"type": "message", "message": {"role": "toolResult", "toolCallId": "c1", "toolName": "read",
                                        "content": [{"type": "text", "text": "an image"},
                                                    {"type": "image", "data": "aGk=", "mimeType": "image/jpeg"}],
                                        "details": {"durationMs": 12}, "isError": False,
                                        "timestamp": 1772359201000}},
        {"type": "compaction", "summary": "we read a.png", "firstKeptEntryId": "e3", "tokensBefore": 9000,
         "details": {"readFiles": ["a.png"]}, "fromHook": False},
        {"type": "custom", "customType": "my-ext", "data": {"n": 1}},
        {"type": "custom_message", "customType": "my-ext", "content": "note for the model", "display": True,
         "details": {"k": 1}},
        {"type": "message", "message": {"role": "custom", "customType": "reminder", "content": "check mail",
                                        "display": False, "timestamp": 1772359202000}},
        {"type": "message", "message": {"role": "bashExecution", "command": "ls", "output": "a.png",
                                        "exitCode": 0, "cancelled": False, "truncated": False,
                                        "timestamp": 1772359203000}},
        {"type": "label", "targetId": "e4", "label": "the picture"},
        {"type": "session_info", "name": "picture chat"},
        {"type": "message", "message": _asst([{"type": "text", "text": "a cat"}])},
    ))
    assert m.drift == {}
    src = {e["event_id"].split(":")[1]: e["payload"].get("source") for e in evs if e["event_type"] == "env_observation"}
    assert src == {"session": "openclaw.session", "e6": "openclaw.compaction", "e7": "openclaw.custom:my-ext",
                   "e8": "openclaw.custom_message:my-ext", "e9": "openclaw.custom_message:reminder",
                   "e10": "openclaw.bash_execution", "e11": "openclaw.label", "e12": "openclaw.session_info"}
    by_id = {e["event_id"]: e for e in evs}
    assert by_id["r:e9"]["payload"]["observation"] == {"content": "check mail", "display": False, "details": None}
    assert by_id["r:e10"]["payload"]["observation"] == {"command": "ls", "output": "a.png", "exitCode": 0,
                                                         "cancelled": False, "truncated": False}
    assert by_id["r:e11"]["payload"]["observation"] == {"targetId": "e4", "label": "the picture"}
    assert by_id["r:e4"]["payload"]["reasoning_summary"] == "look first"
    assert by_id["r:e4"]["llm"]["params"]["thinking_level"] == "high"
    assert by_id["r:e5"]["payload"]["output"]["images"][0]["mimeType"] == "image/jpeg"
    assert by_id["r:e3"]["payload"]["observation"]["images"][0]["bytes"] == 6
    extra = session_record(m, session_id="s1", agent="main", index_entry=None, validate=True)["runtime_config"]["extra"]
    assert extra["parent_session"] == HEADER["parentSession"] and extra["session_name"] == "picture chat"
    assert "branches" not in extra and m.counts["branches"] == 0


def test_a_tool_calls_execution_mode_is_kept_and_unknown_call_keys_are_drift():
    """OpenClaw writes ``executionMode`` on a toolCall block: kept in the call's ``llm.params`` by call
    id; any other key a toolCall block carries is counted as drift, as a row's unknown keys are."""
    m = SessionMapper("r")
    evs = feed_rows(m, [HEADER] + _rows(
        {"type": "message", "message": _asst([
            {"type": "toolCall", "id": "c1", "name": "read", "arguments": {}, "executionMode": "parallel"},
            {"type": "toolCall", "id": "c2", "name": "bash", "arguments": {}, "executionMode": "sequential",
             "futureKey": 1}], "toolUse")}))
    act = next(e for e in evs if e["event_type"] == "worker_action")
    assert act["llm"]["params"]["tool_execution_modes"] == {"c1": "parallel", "c2": "sequential"}
    assert m.drift == {"message.assistant.content.toolCall.futureKey": 1}
    plain = feed_rows(SessionMapper("r"), [HEADER] + _rows(
        {"type": "message", "message": _asst([{"type": "toolCall", "id": "c1", "name": "read", "arguments": {}}],
                                             "toolUse")}))
    assert "tool_execution_modes" not in plain[1]["llm"]["params"]


def test_a_v2_hook_message_is_an_extension_message():
    m = SessionMapper("r")
    evs = feed_rows(m, [{**HEADER, "version": 2}] + _rows(
        {"type": "message", "message": {"role": "hookMessage", "customType": "h", "content": "x", "display": True,
                                        "timestamp": 1772359200000}}))
    assert evs[1]["payload"]["source"] == "openclaw.custom_message:h"
    assert m.drift == {"session.version=2": 1}


def test_openclaw_written_assistant_messages_are_no_model_turns():
    m = SessionMapper("r")
    evs = feed_rows(m, [HEADER] + _rows(
        # transcript.ts mirrors a reply delivered through a channel; it is not a model's output
        {"type": "message", "message": _asst([{"type": "text", "text": "sent: invoice.pdf"}], model="delivery-mirror",
                                             provider="openclaw", api="openai-responses", usage=ZERO,
                                             idempotencyKey="k1",
                                             openclawDeliveryMirror={"kind": "message-tool-source-reply"})},
        {"type": "message", "message": {"role": "assistant", "content": [{"type": "text", "text": "[note] hi"}],
                                        "timestamp": 1772359200000, "stopReason": "injected",
                                        "usage": {"input": 0, "output": 0, "totalTokens": 0}}},
        {"type": "message", "message": _asst([{"type": "text", "text": "done"}])},
    ))
    assert [e["event_type"] for e in evs] == ["env_observation", "env_observation", "env_observation",
                                              "worker_action", "worker_output"]
    assert evs[1]["payload"] == {"observation": {"text": "sent: invoice.pdf", "openclawDeliveryMirror": {
        "kind": "message-tool-source-reply"}, "idempotencyKey": "k1"}, "source": "openclaw.delivery_mirror"}
    assert evs[2]["payload"]["source"] == "openclaw.injected"
    assert m.first_model == {"model": "anthropic/claude-sonnet-4-5",
                             "params": {"provider": "anthropic", "api": "anthropic-messages", "thinking_level": None}}
    assert m.drift == {} and m.counts["delivery_mirrors"] == 1 and m.counts["injected_messages"] == 1


def test_a_branch_keeps_its_parent_and_the_session_names_its_leaf():
    m = SessionMapper("r")
    rows = _rows(
        {"type": "message", "message": {"role": "user", "content": "write a poem", "timestamp": 1}},
        {"type": "message", "message": _asst([{"type": "text", "text": "roses are red"}])},
        {"type": "message", "message": {"role": "user", "content": "shorter", "timestamp": 2}},
        {"type": "message", "message": _asst([{"type": "text", "text": "roses"}])},
    )
    # session-manager.ts branchWithSummary: back to e2, a summary of the abandoned path, then on from it
    rows.append({"type": "branch_summary", "id": "b1", "parentId": "e2", "timestamp": T(5), "fromId": "e2",
                 "summary": "asked for a shorter poem", "fromHook": False})
    rows.append({"type": "message", "id": "e6", "parentId": "b1", "timestamp": T(6),
                 "message": {"role": "user", "content": "longer", "timestamp": 3}})
    evs = feed_rows(m, [HEADER] + rows)
    by_id = {e["event_id"]: e for e in evs}
    assert by_id["r:b1"]["parent_event_id"] == "r:e2.1"  # the fork point's last event (its worker_output)
    assert by_id["r:b1"]["payload"] == {"observation": {"fromId": "e2", "summary": "asked for a shorter poem",
                                                        "fromHook": False}, "source": "openclaw.branch_summary"}
    assert by_id["r:e6"]["parent_event_id"] == "r:b1"
    assert m.counts["branches"] == 1 and m.drift == {}
    extra = session_record(m, session_id="s1", agent="main", index_entry=None, validate=True)["runtime_config"]["extra"]
    assert extra["branches"] == 1 and extra["leaf_entry_id"] == "e6"


def _write(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))


def test_discovery_skips_checkpoint_copies_and_trajectories_and_finds_topics_and_bak_archives(tmp_path):
    """Before: the trajectory and the zstd archive were read as transcripts (every line quarantined),
    the checkpoint copy was listed as skipped at every import, ``.bak.<ts>`` archives were not
    found and a topic transcript lost its session key."""
    sessions = tmp_path / ".openclaw" / "agents" / "main" / "sessions"
    rows = [{**HEADER, "id": "s1"}] + _rows(
        {"type": "message", "message": {"role": "user", "content": "hi", "timestamp": 1}},
        {"type": "message", "message": _asst([{"type": "text", "text": "hello"}])})
    _write(sessions / "s1.jsonl", rows)
    _write(sessions / "s1.checkpoint.0b6c1f8e-2d3a-4b5c-8d9e-0f1a2b3c4d5e.jsonl", rows)  # a copy (artifacts.ts)
    # a checkpoint whose live transcript is gone holds the only copy of its rows
    _write(sessions / "s4.checkpoint.1c7d2f9e-3e4b-4c6d-9e0f-1a2b3c4d5e6f.jsonl", [{**HEADER, "id": "s4"}] + rows[1:])
    _write(sessions / "s1.trajectory.jsonl", [{"kind": "step", "n": 1}])
    _write(sessions / "t1-topic-42.jsonl", [{**HEADER, "id": "t1"}] + rows[1:])
    _write(sessions / "s2.jsonl.bak.2026-03-01T10-00-00.000Z", [{**HEADER, "id": "s2"}] + rows[1:])
    (sessions / "s3.jsonl.reset.2026-03-01T10-00-00.000Z.zst").write_bytes(b"\x28\xb5\x2f\xfd binary")
    (sessions / "sessions.json").write_bytes(orjson.dumps({
        "agent:main:telegram:group:-100:topic:42": {"sessionId": "t1", "sessionFile": "t1-topic-42.jsonl",
                                                     "chatType": "group", "channel": "telegram"}}))
    problems: list[str] = []
    found = {t.path.name: t for t in discover([tmp_path], problems)}
    assert sorted(found) == ["s1.jsonl", "s2.jsonl.bak.2026-03-01T10-00-00.000Z",
                             "s4.checkpoint.1c7d2f9e-3e4b-4c6d-9e0f-1a2b3c4d5e6f.jsonl", "t1-topic-42.jsonl"]
    assert found["s4.checkpoint.1c7d2f9e-3e4b-4c6d-9e0f-1a2b3c4d5e6f.jsonl"].archived == "checkpoint"
    assert found["t1-topic-42.jsonl"].index_entry["key"] == "agent:main:telegram:group:-100:topic:42"
    assert found["s2.jsonl.bak.2026-03-01T10-00-00.000Z"].archived == "bak"
    assert len(problems) == 1 and "s3.jsonl.reset" in problems[0] and "zstd-compressed archive" in problems[0]

    rep = import_openclaw([tmp_path], tmp_path / "traces")
    assert rep.reconciles and rep.files_skipped == 0 and rep.lines_quarantined == 0 and rep.runs_written == 4
    topic = orjson.loads((tmp_path / "traces" / "oc-t1" / "session.json").read_bytes())
    assert topic["runtime_config"]["extra"]["channel"] == "telegram"


# openclaw/openclaw src/state/openclaw-agent-schema.generated.ts (the tables the import reads)
AGENT_DB_SCHEMA = """
CREATE TABLE sessions (session_id TEXT NOT NULL PRIMARY KEY, session_key TEXT NOT NULL,
  created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, chat_type TEXT, channel TEXT, display_name TEXT);
CREATE TABLE session_entries (session_key TEXT NOT NULL PRIMARY KEY, session_id TEXT NOT NULL,
  entry_json TEXT NOT NULL, updated_at INTEGER NOT NULL);
CREATE TABLE transcript_events (session_id TEXT NOT NULL, seq INTEGER NOT NULL, event_json TEXT NOT NULL,
  created_at INTEGER NOT NULL, PRIMARY KEY (session_id, seq));
"""


def _append_events(db_path: Path, sid: str, rows: list[dict], first_seq: int = 0) -> None:
    with sqlite3.connect(db_path) as db:
        db.executemany("INSERT INTO transcript_events VALUES (?, ?, ?, 0)",
                       [(sid, first_seq + i, orjson.dumps(r).decode()) for i, r in enumerate(rows)])


def test_sessions_in_the_agent_database_import_and_grow_like_files(tmp_path):
    """Current OpenClaw writes no ``sessions/*.jsonl``: its transcripts are rows of the agent
    database (``src/state/openclaw-agent-db.paths.ts``). Before, such a home imported nothing."""
    home = tmp_path / "home"
    db_path = home / ".openclaw" / "agents" / "main" / "agent" / "openclaw-agent.sqlite"
    db_path.parent.mkdir(parents=True)
    with sqlite3.connect(db_path) as db:
        db.executescript(AGENT_DB_SCHEMA)
        db.execute("INSERT INTO sessions VALUES ('s7', 'agent:main:telegram:direct:42', 0, 0, 'direct', "
                   "'telegram', NULL)")
        db.execute("INSERT INTO session_entries VALUES ('agent:main:telegram:direct:42', 's7', ?, 0)",
                   (orjson.dumps({"sessionId": "s7", "lastChannel": "telegram", "chatType": "direct"}).decode(),))
    rows = [{**HEADER, "id": "s7"}] + _rows(
        {"type": "message", "message": {"role": "user", "content": "hi", "timestamp": 1}},
        {"type": "message", "message": _asst([{"type": "text", "text": "hello"}])},
        {"type": "message", "message": {"role": "user", "content": "and now?", "timestamp": 2}},
        {"type": "message", "message": _asst([{"type": "text", "text": "now this"}])})
    _append_events(db_path, "s7", rows[:3])
    out = tmp_path / "traces"

    rep = import_openclaw([home], out)
    assert rep.reconciles and rep.runs_written == 1 and rep.lines_accepted == 3 and rep.problems == []
    session = orjson.loads((out / "oc-s7" / "session.json").read_bytes())
    assert session["runtime_config"]["extra"]["session_key"] == "agent:main:telegram:direct:42"
    assert session["runtime_config"]["extra"]["lastChannel"] == "telegram"
    assert session["source"]["ref"] == "openclaw:main/s7" and session["goal"]["text"] == "hi"

    again = import_openclaw([home], out)
    assert again.files_unchanged == 1 and again.events_written == 0
    _append_events(db_path, "s7", rows[3:], first_seq=3)
    grown = import_openclaw([home], out)
    assert grown.files_appended == 1 and grown.lines_accepted == 2
    one_shot = tmp_path / "one_shot"
    import_openclaw([home], one_shot)
    assert (out / "oc-s7" / "events.jsonl").read_bytes() == (one_shot / "oc-s7" / "events.jsonl").read_bytes()
    assert sqlite3.connect(db_path).execute("SELECT count(*) FROM transcript_events").fetchone() == (5,)


def test_an_unreadable_agent_database_is_a_problem_with_its_place(tmp_path):
    db_path = tmp_path / "agents" / "main" / "agent" / "openclaw-agent.sqlite"
    db_path.parent.mkdir(parents=True)
    db_path.write_bytes(b"not a database at all" * 100)
    rep = import_openclaw([tmp_path], tmp_path / "traces")
    assert rep.runs_written == 0 and len(rep.problems) == 1
    assert rep.problems[0].startswith(f"{db_path}: unreadable OpenClaw agent database")
