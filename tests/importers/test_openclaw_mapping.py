"""SessionMapper: rows → events, lineage, pairing, drift and rejected rows."""

from __future__ import annotations

import pytest

from tests.importers.conftest import feed_rows
from tracebridge.importers.openclaw.mapping import RowError, SessionMapper

T = "2026-03-01T10:00:{:02d}.000Z".format


def _asst(content, stop="toolUse", **extra):
    return {"role": "assistant", "content": content, "provider": "anthropic", "model": "m1", "api": "x",
            "usage": {"input": 10, "output": 2, "cacheRead": 5, "cost": {"total": 0.25}}, "stopReason": stop, **extra}


def test_tool_calls_pair_with_results_and_retry_is_marked():
    m = SessionMapper("r")
    evs = feed_rows(m, [
        {"type": "session", "version": 3, "id": "s", "timestamp": T(0)},
        {"type": "message", "id": "u", "parentId": None, "timestamp": T(1), "message": {"role": "user", "content": "go"}},
        {"type": "message", "id": "a1", "parentId": "u", "timestamp": T(2), "message": _asst(
            [{"type": "toolCall", "id": "c1", "name": "read", "arguments": {"p": 1}},
             {"type": "toolCall", "id": "c2", "name": "exec", "arguments": {"c": "ls"}}])},
        {"type": "message", "id": "t2", "parentId": "a1", "timestamp": T(3), "message": {
            "role": "toolResult", "toolCallId": "c2", "toolName": "exec", "content": "ok", "isError": False}},
        {"type": "message", "id": "t1", "parentId": "t2", "timestamp": T(4), "message": {
            "role": "toolResult", "toolCallId": "c1", "toolName": "read", "content": "ENOENT", "isError": True}},
        {"type": "message", "id": "a2", "parentId": "t1", "timestamp": T(5), "message": _asst(
            [{"type": "toolCall", "id": "c3", "name": "read", "arguments": {"p": 2}}])},
        {"type": "message", "id": "t3", "parentId": "a2", "timestamp": T(6), "message": {
            "role": "toolResult", "toolCallId": "c3", "toolName": "read", "content": "data", "isError": False}},
    ])
    by_id = {e["event_id"]: e for e in evs}
    assert evs[0]["root"] is True and evs[0]["event_id"] == "r:session"
    assert [e["event_type"] for e in evs[2:5]] == ["worker_action", "worker_tool_call", "worker_tool_call"]
    assert by_id["r:a1"]["payload"]["tool"] == "read" and by_id["r:a1"]["llm"]["usage"] == {
        "input_tokens": 15, "output_tokens": 2, "cost_usd": 0.25, "latency_ms": 0.0}
    assert by_id["r:t2"]["parent_event_id"] == "r:a1.2"  # paired by call id, not by row order
    assert by_id["r:t1"]["parent_event_id"] == "r:a1.1"
    assert by_id["r:t1"]["payload"]["error"] == {"kind": "not_found", "message": "ENOENT"}
    assert by_id["r:t3"]["payload"]["retry_of"] == "c1"
    assert m.tokens == 34 and m.cost == 0.5 and m.tools == {"read", "exec"}


def test_stop_reasons_and_errors():
    m = SessionMapper("r")
    evs = feed_rows(m, [
        {"type": "message", "id": "a", "timestamp": T(1), "message": _asst([{"type": "text", "text": "done"}], "stop")},
        {"type": "message", "id": "b", "timestamp": T(2), "message": _asst([], "error", errorMessage="Request timed out.")},
        {"type": "message", "id": "c", "timestamp": T(3), "message": _asst([{"type": "text", "text": "part"}], "length")},
        {"type": "message", "id": "d", "timestamp": T(4), "message": {"role": "assistant", "stopReason": "injected",
                                                                      "content": "note"}},
        {"type": "message", "id": "e", "timestamp": T(5), "message": _asst([{"type": "text", "text": "x"}], "weird")},
    ])
    kinds = [(e["event_id"], e["event_type"]) for e in evs]
    assert ("r:a.1", "worker_output") in kinds and ("r:b.1", "episode_error") in kinds
    assert evs[3]["payload"] == {"kind": "timeout", "message": "Request timed out.", "recoverable": True}
    assert evs[5]["payload"]["status"] == "partial"
    assert evs[6]["event_type"] == "env_observation" and evs[6]["payload"]["source"] == "openclaw.injected"
    assert m.drift["message.assistant.stopReason=weird"] == 1 and m.counts["rows_without_parentId"] == 5
    assert m.last_error is None  # a later successful turn: the session did not end in error
    m.feed({"type": "message", "id": "f", "timestamp": T(6), "message": _asst([], "error", errorMessage="429")}, 6)
    assert m.last_error == "rate_limit"


def test_state_rows_and_steps():
    m = SessionMapper("r")
    evs = feed_rows(m, [
        {"type": "model_change", "id": "1", "parentId": None, "timestamp": T(1), "provider": "openai", "modelId": "g5"},
        {"type": "thinking_level_change", "id": "2", "parentId": "1", "timestamp": T(2), "thinkingLevel": "high"},
        {"type": "message", "id": "3", "parentId": "2", "timestamp": T(3), "message": {"role": "user", "content": "a"}},
        {"type": "compaction", "id": "4", "parentId": "3", "timestamp": T(4), "summary": "s", "tokensBefore": 9},
        {"type": "message", "id": "5", "parentId": "4", "timestamp": T(5), "message": {"role": "user", "content": "b"}},
        {"type": "custom", "id": "6", "parentId": "5", "timestamp": T(6), "customType": "openclaw:prompt-error",
         "data": {"error": "too big"}},
        {"type": "mystery", "id": "7", "parentId": "nope", "timestamp": T(7), "x": 1},
    ])
    assert evs[0]["payload"] == {"from_state": "model:none", "to_state": "model:openai/g5", "reason": "model_change"}
    assert evs[1]["payload"]["to_state"] == "thinking:high"
    assert [e["step"] for e in evs] == [0, 0, 0, 0, 1, 1, 1]
    assert evs[3]["payload"]["source"] == "openclaw.compaction" and evs[3]["payload"]["observation"]["summary"] == "s"
    assert evs[5]["event_type"] == "episode_error" and evs[5]["payload"]["kind"] == "prompt_error"
    assert evs[6]["parent_event_id"] == "r:6" and m.counts["lineage_repaired"] == 1
    assert m.drift["row_type=mystery"] == 1 and m.goal == "a" and m.kind == "chat"


def test_a_model_change_after_model_turns_names_the_model_they_used():
    """A session without an opening model_change or model snapshot (clawdbot-era files) whose user switches
    model mid-session: the transition said it came from ``model:none`` though every turn named ``m1``."""
    m = SessionMapper("r")
    evs = feed_rows(m, [
        {"type": "message", "id": "u", "parentId": None, "timestamp": T(1), "message": {"role": "user", "content": "a"}},
        {"type": "message", "id": "a", "parentId": "u", "timestamp": T(2), "message": _asst([{"type": "text", "text": "x"}],
                                                                                              "stop")},
        {"type": "model_change", "id": "c", "parentId": "a", "timestamp": T(3), "provider": "openai", "modelId": "g5"},
        {"type": "model_change", "id": "d", "parentId": "c", "timestamp": T(4), "provider": "openai", "modelId": "g6"},
    ])
    assert [e["payload"]["from_state"] for e in evs if e["event_type"] == "orchestrator_transition"] == [
        "model:anthropic/m1", "model:openai/g5"]


def test_a_photo_sent_without_a_caption_leaves_the_goal_to_the_next_words():
    """A Telegram session opening with a photo and no caption: before, the run's goal was "(no user message)"
    (the photo's empty text was taken as the goal), so every such session shared one goal and one split."""
    from tracebridge.importers.openclaw.session import session_record

    m = SessionMapper("r")
    photo = [{"type": "image", "data": "aGVsbG8=", "mimeType": "image/jpeg"}]
    feed_rows(m, [
        {"type": "message", "id": "u1", "parentId": None, "timestamp": T(1), "message": {"role": "user", "content": photo}},
        {"type": "message", "id": "a1", "parentId": "u1", "timestamp": T(2), "message": _asst(
            [{"type": "text", "text": "Nice. What would you like to know?"}], "stop")},
        {"type": "message", "id": "u2", "parentId": "a1", "timestamp": T(3), "message": {
            "role": "user", "content": "what breed is this dog?"}},
    ])
    rec = session_record(m, session_id="s", agent="main", index_entry=None, validate=True)
    assert rec["goal"]["text"] == "what breed is this dog?" and rec["goal"]["family"] == "openclaw/chat"


@pytest.mark.parametrize(("row", "field"), [
    ([1, 2], "<line>"),
    ({"id": "x"}, "type"),
    ({"type": "message", "id": "x"}, "message"),
    ({"type": "message", "id": "x", "message": {"content": "no role"}}, "message.role"),
    ({"type": "model_change", "id": "x"}, "modelId"),
    ({"type": "custom", "id": "x", "data": {}}, "customType"),
])
def test_unmappable_rows_raise_with_the_field(row, field):
    with pytest.raises(RowError) as err:
        SessionMapper("r").feed(row, 1)
    assert err.value.field == field


def test_duplicate_row_ids_get_distinct_event_ids():
    m = SessionMapper("r")
    evs = feed_rows(m, [{"type": "message", "id": "a", "timestamp": T(1), "message": {"role": "user", "content": "x"}},
                    {"type": "message", "id": "a", "timestamp": T(2), "message": {"role": "user", "content": "y"}}])
    assert evs[1]["event_id"] == "r:a~L2" and m.drift["row:duplicate_id"] == 1


@pytest.mark.parametrize(("given", "want"), [
    ("2026-03-01T10:00:05.123Z", "2026-03-01T10:00:05.123Z"),  # the fast path
    ("٢٠٢٦-03-01T10:00:05.123Z", "٢٠٢٦-03-01T10:00:05.123Z"),  # Unicode digits: the regex (\d) takes them
    ("2026-03-01T10:00:05Z", "2026-03-01T10:00:05.000Z"),  # no milliseconds: parsed and reformatted
    ("2026-03-01 10:00:05.123Z", "2026-03-01T10:00:05.123Z"),  # a space for the T: parsed
    ("2026-03-01T10:00:05.123+00:00", "2026-03-01T10:00:05.123Z"),
    ("2026-03-01T1O:00:05.123Z", "2026-03-01T10:00:01.000Z"),  # a letter O: invalid, the message's ms time
    ("2026-03-01T10:00:05.123Z\n", "2026-03-01T10:00:01.000Z"),  # a trailing newline: invalid
    (1772359201000, "2026-03-01T10:00:01.000Z"),  # not a string: the message's epoch ms
])
def test_row_timestamps_fast_path_and_fallbacks_agree_with_the_schema_format(given, want):
    m = SessionMapper("r")
    row = {"type": "message", "id": "u", "timestamp": given,
           "message": {"role": "user", "content": "go", "timestamp": 1772359201000}}
    assert m.feed(row, 1)[0]["timestamp"] == want
