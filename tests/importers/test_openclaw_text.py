"""Text parsing of OpenClaw user messages, timestamps, error taxonomy and content blocks."""

from __future__ import annotations

from collections import Counter

from tracebridge.importers.openclaw.content import split_content, tool_args, usage_of
from tracebridge.importers.openclaw.text import (
    classify_llm_error,
    classify_tool_error,
    parse_reaction_event,
    split_user_text,
    to_timestamp,
)
from tracebridge.schema.events import ErrorKind


def test_telegram_prefix_and_message_id_are_split_off():
    ut = split_user_text("[Telegram Ada (@ada) id:4242 +2m 2026-03-01 10:00 UTC] check logs\n[message_id: 77]")
    assert ut.text == "check logs"
    assert ut.channel == {"channel": "telegram", "sender": {"name": "Ada", "id": 4242, "username": "ada"},
                          "context": "+2m 2026-03-01 10:00 UTC", "message_id": 77}


def test_untrusted_metadata_blocks_become_channel_metadata():
    text = ('Conversation info (untrusted metadata):\n```json\n{"chat_id": "telegram:1", "message_id": 5}\n```\n'
            'Sender (untrusted metadata):\n```json\n{"label": "Bo", "id": "1"}\n```\nhello')
    ut = split_user_text(text)
    assert ut.text == "hello"
    assert ut.channel["conversation"]["message_id"] == 5 and ut.channel["sender"]["label"] == "Bo"
    assert ut.channel["channel"] == "telegram"


def test_system_event_lines_and_reactions():
    ut = split_user_text("System: [2026-03-22 04:55:25 GMT+8] Exec completed (ab, code 0) :: ok\n"
                         "System: [2026-03-22 04:56:00 GMT+8] Telegram reaction added: 👍 by Ada (@ada) on msg 123\n"
                         "and then a question")
    assert [e["kind"] for e in ut.system_events] == ["exec", "telegram_reaction"]
    assert ut.system_events[1]["reaction"] == {"action": "added", "emoji": "👍", "who": "Ada", "username": "ada",
                                               "message_id": 123}
    assert ut.text == "and then a question" and not ut.is_system_only
    assert parse_reaction_event("Telegram reaction removed: 🙈 by Bo on msg 9")["username"] is None


def test_timestamps_iso_and_epoch():
    assert to_timestamp("2026-03-01T10:00:00.123Z") == "2026-03-01T10:00:00.123Z"
    assert to_timestamp("2026-02-10T08:00:00Z") == "2026-02-10T08:00:00.000Z"
    assert to_timestamp("2026-02-10T09:00:00+01:00") == "2026-02-10T08:00:00.000Z"
    assert to_timestamp(1772000000500) == "2026-02-25T06:13:20.500Z"
    assert to_timestamp(1772000000) == "2026-02-25T06:13:20.000Z"
    assert to_timestamp("yesterday") is None and to_timestamp(None) is None and to_timestamp(True) is None


def test_error_taxonomy():
    assert classify_tool_error("ENOENT: no such file or directory") is ErrorKind.NOT_FOUND
    assert classify_tool_error("Command timed out after 5s") is ErrorKind.TIMEOUT
    assert classify_tool_error("bash: permission denied") is ErrorKind.PERMISSION
    assert classify_tool_error("Unknown tool: frobnicate") is ErrorKind.UNKNOWN_TOOL
    assert classify_tool_error("Validation failed: path must be a string") is ErrorKind.BAD_ARGS
    assert classify_tool_error("Command exited with code 1\nboom") is ErrorKind.RUNTIME_ERROR
    assert classify_tool_error("x", {"status": "timeout"}) is ErrorKind.TIMEOUT
    assert classify_llm_error("429 Rate limit reached") == "rate_limit"
    assert classify_llm_error("Request timed out.") == "timeout"
    assert classify_llm_error("500 Internal server error") == "runtime_error"


def test_content_usage_and_args():
    drift: Counter[str] = Counter()
    text, thinking, calls, images, other = split_content(
        [{"type": "text", "text": "a"}, {"type": "thinking", "thinking": "t", "thinkingSignature": "x"},
         {"type": "toolCall", "id": "c", "name": "read", "arguments": {}}, {"type": "text", "text": "b"},
         {"type": "image", "data": "AAAA", "mimeType": "image/png"}, {"type": "audio"}], drift, "m")
    assert (text, thinking, len(calls)) == ("a\nb", "t", 1)
    assert images == [{"type": "image", "mimeType": "image/png", "bytes": 3, "sha256": images[0]["sha256"]}]
    assert other == [{"type": "audio"}] and drift == Counter({"m.content:audio": 1})
    assert usage_of({"input": 10, "output": 5, "cacheRead": 100, "cost": {"total": 0.5}}) == (110, 5, 0.5)
    assert usage_of({"input": 10, "output": 5, "totalTokens": 15}) == (10, 5, 0.0)
    assert usage_of({"input": -1, "output": "x"}) == (0, 0, 0.0) and usage_of(None) == (0, 0, 0.0)
    assert tool_args('{"a": 1}') == {"a": 1} and tool_args("not json") == {"_raw": "not json"}
    assert tool_args([1]) == {"_raw": [1]} and tool_args(None) == {}
