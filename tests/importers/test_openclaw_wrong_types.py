"""Values of the wrong type in OpenClaw rows are counted as drift and listed as ``file:line: field: why``;
a number where text was expected is kept as its text (before, each was replaced without a word)."""

from __future__ import annotations

import orjson
import pytest

from tests.importers.conftest import feed_rows
from tracebridge.importers.openclaw import import_openclaw
from tracebridge.importers.openclaw.mapping import SessionMapper

HEADER = {"type": "session", "version": 3, "id": "s1", "timestamp": "2026-03-01T10:00:00.000Z"}
TS = "2026-03-01T10:00:01.000Z"


def _user(content, **row) -> dict:
    return {"type": "message", "id": "u1", "parentId": None, "timestamp": TS,
            "message": {"role": "user", "content": content, "timestamp": 1772359201000}, **row}


def _call(call: dict, usage=None) -> dict:
    return {"type": "message", "id": "a1", "parentId": "u1", "timestamp": TS,
            "message": {"role": "assistant", "content": [{"type": "toolCall", "arguments": {}, **call}],
                        "stopReason": "toolUse", "model": "m", "provider": "p",
                        "usage": usage if usage is not None else {"input": 1, "output": 1, "cost": {"total": 0.0}}}}


def _map(rows: list[dict]) -> tuple[SessionMapper, list[dict]]:
    m = SessionMapper("oc-s1")
    return m, feed_rows(m, [HEADER, *rows])


@pytest.mark.parametrize(("text", "goal", "kind"), [(42, "42", "number_as_text"), (None, None, "not_a_string"),
                                                    ([["a"]], None, "not_a_string")])
def test_user_text_of_the_wrong_type(text, goal, kind):
    m, events = _map([_user([{"type": "text", "text": text}])])
    assert m.goal == goal and m.drift == {f"message.user.content.text:{kind}": 1}
    assert m.notes[0][:2] == (2, "message.user.content.text") and "content[0].text" in m.notes[0][2]
    if goal is None:  # the block is kept whole, not dropped
        assert events[-1]["payload"]["observation"]["other_content"] == [{"type": "text", "text": text}]


def test_null_content_id_name_call_id_usage_is_error_and_timestamps():
    usage = {"input": "lots", "output": -3, "cacheRead": 1e30, "cacheWrite": 0, "cost": {"total": -1}}
    result = {"type": "message", "id": "r1", "parentId": "a1", "timestamp": TS,
              "message": {"role": "toolResult", "toolCallId": "a1#0", "toolName": "5", "content": "ok",
                          "isError": "yes", "timestamp": "not a time"}}
    m, events = _map([_user(None), _user("hi", id=123), _call({"name": 5, "id": None}, usage), result,
                      {**_call({"name": ["x"], "id": "c2"}, "lots"), "id": "a2"}])
    assert m.drift == {
        "message.user.content:null": 1, "row.id:number_as_text": 1,
        "message.assistant.content.toolCall.name:number_as_text": 1,
        "message.assistant.content.toolCall.id:missing_or_not_a_string": 1,
        "message.assistant.usage.input:invalid": 1, "message.assistant.usage.output:invalid": 1,
        "message.assistant.usage.cacheRead:invalid": 1, "message.assistant.usage.cost.total:invalid": 1,
        "message.toolResult.isError:not_a_boolean": 1, "message.timestamp:invalid": 1,
        "message.assistant.content.toolCall.name:not_a_string": 1, "message.assistant.usage:not_an_object": 1}
    assert m.goal == "hi" and "oc-s1:123" in {e["event_id"] for e in events}  # the number kept as text
    calls = [e["payload"] for e in events if e["event_type"] == "worker_tool_call"]
    assert [(c["tool"], c["call_id"]) for c in calls] == [("5", "a1#0"), ("unknown", "c2")]
    assert {n[0] for n in m.notes} == {2, 3, 4, 5, 6}  # every one listed with its line


def test_header_id_not_a_string_is_listed_with_file_and_line(tmp_path):
    src = tmp_path / "abc.jsonl"
    src.write_bytes(orjson.dumps({**HEADER, "id": 5}) + b"\n" + orjson.dumps(_user("hi")) + b"\n")
    rep = import_openclaw([src], tmp_path / "t")
    assert rep.drift["session.id:not_a_string"] == 1 and (tmp_path / "t" / "oc-abc").is_dir()
    assert rep.problems == [(f"{src}:1: session.id: 5 is no session id: the run is named after the file (the "
                             "header's id is kept in its observation) (counted as drift)")]
