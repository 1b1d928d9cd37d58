"""Role I/O contract: render → parse round trips and malformed replies."""

from __future__ import annotations

import pytest

from tracebridge.schema.roles import (
    ParseError,
    messages,
    parse_planner_reply,
    parse_verifier_reply,
    parse_worker_reply,
    planner_reply_text,
    planner_user_text,
    tool_call_text,
    verifier_reply_text,
    worker_user_text,
)


def test_planner_round_trip():
    payload = {"plan": [{"index": 0, "description": "list files", "tool": "ls", "args": {"path": "."}},
                        {"index": 1, "description": "count", "tool": None, "args": None}],
               "rationale": "r", "confidence": 0.5}
    out = parse_planner_reply("sure! " + planner_reply_text(payload) + " trailing")
    assert [s.model_dump() for s in out.plan] == payload["plan"] and out.confidence == 0.5


@pytest.mark.parametrize("text", ["", "no json here", '{"steps": []}', '{"plan": [3]}', '{"plan": "x"}'])
def test_planner_garbage(text):
    with pytest.raises(ParseError):
        parse_planner_reply(text)


def test_worker_tool_call_and_answer():
    r = parse_worker_reply(tool_call_text("sql", {"q": "select 1"}))
    assert r.is_tool_call and r.tool == "sql" and r.args == {"q": "select 1"}
    assert parse_worker_reply('<tool_call>{"name": "a", "arguments": "{\\"x\\": 1}"}').args == {"x": 1}
    assert parse_worker_reply("The answer is 42").answer == "The answer is 42"


@pytest.mark.parametrize("text", ["", "<tool_call>nope</tool_call>", '<tool_call>{"name": 3}</tool_call>',
                                  '{"name": "a", "arguments": [1]}'])
def test_worker_garbage(text):
    with pytest.raises(ParseError):
        parse_worker_reply(text)


def test_verifier_round_trip():
    payload = {"verdict": "replan", "feedback": "step 2 failed", "risk_flags": ["loop", "cost"]}
    out = parse_verifier_reply(verifier_reply_text(payload))
    assert out.verdict == "replan" and out.feedback == "step 2 failed" and out.risk_flags == ["loop", "cost"]
    with pytest.raises(ParseError):
        parse_verifier_reply("looks fine to me")


def test_user_texts_and_messages():
    assert "Available tools: a, b" in planner_user_text({"goal": "g", "tool_mask": ["a", "b"]})
    assert "Prior failure" in worker_user_text({"plan_step": {"description": "d"}, "prior_failures": [{"k": 1}]})
    msgs = messages("verifier", "u", "verdict: end", system_prompt="S")
    assert [m["role"] for m in msgs] == ["system", "user", "assistant"] and msgs[0]["content"] == "S"
