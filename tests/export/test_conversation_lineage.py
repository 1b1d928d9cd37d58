"""OpenClaw conversation rows lead back to their failures and keep the calls as the model wrote them:
``labels.failed_event_ids`` names the failed calls of the user turn (per branch of a branched session),
and tool-call arguments keep their key order."""

from __future__ import annotations

from typing import Any

from tests.export.test_openclaw_export import _ev, _two_call_turn


def test_a_conversation_recovery_names_the_failed_call_events() -> None:
    from tracebridge.export.config import ViewsConfig
    from tracebridge.export.views import RunContext, build_views

    views, _ = build_views(_two_call_turn(), RunContext("r", "openclaw/chat", "train", "openclaw", None), ViewsConfig())
    first, second, answer = views["worker_sft"]
    (pair,) = views["worker_recovery_cases/pairs"]
    assert pair["meta"]["labels"]["failed_event_ids"] == second["meta"]["labels"]["failed_event_ids"] == [
        "r:a1", "r:a1.2", "r:t2"]  # the failed call c2 only, not c1 of the same turn, which succeeded
    assert answer["meta"]["labels"]["failed_event_ids"] == ["r:a1", "r:a1.2", "r:t2"]  # its prompt shows it too
    assert "failed_event_ids" not in first["meta"]["labels"]


def test_failed_calls_of_one_branch_are_not_named_on_another() -> None:
    """A session that branched after a failed call: each path's recovery names the failures of its own path."""
    from tracebridge.export.config import ViewsConfig
    from tracebridge.export.views import RunContext, build_views

    def call(a: str, parent: str, cid: str, x: str, ok: bool) -> list[dict[str, Any]]:
        return [_ev(a, "worker_action", parent, {"action": "tool_call"}, llm={"response": ""}),
                _ev(f"{a}.1", "worker_tool_call", a, {"call_id": cid, "tool": "sync", "args": {"x": x}}),
                _ev(f"t{cid}", "worker_tool_result", f"{a}.1", {"call_id": cid, "ok": ok, "output": "out"})]

    events = [_ev("u", "planner_input", None, {"goal": "sync"}), *call("a1", "u", "1", "a", False),
              *call("a2", "t1", "2", "b", False), *call("a3", "t2", "3", "c", True),  # the first path
              *call("b2", "t1", "4", "d", True)]  # the other path, from the first failure
    ctx = RunContext("r", "openclaw/chat", "train", "openclaw", None, branched=True)
    views, _ = build_views(events, ctx, ViewsConfig())
    failed = {r["meta"]["event_ids"][1]: r["meta"]["labels"]["failed_event_ids"]
              for r in views["worker_recovery_cases/sft"]}
    assert failed == {"r:a3": ["r:a1", "r:a1.1", "r:t1", "r:a2", "r:a2.1", "r:t2"], "r:b2": ["r:a1", "r:a1.1", "r:t1"]}


def test_call_arguments_keep_the_order_the_model_wrote_them_in() -> None:
    """OpenClaw sends an earlier call back to the model as it was written (``JSON.stringify`` of the recorded
    arguments); rows held them with sorted keys, a context the model never saw and a target it never wrote."""
    from tracebridge.export.config import ViewsConfig
    from tracebridge.export.views import RunContext, build_views

    edit = {"path": "src/a.py", "oldText": "x = 1", "newText": "x = 2"}
    events = [_ev("u", "planner_input", None, {"goal": "fix a.py"}),
              _ev("a1", "worker_action", "u", {"action": "tool_call"}, llm={"response": ""}),
              _ev("a1.1", "worker_tool_call", "a1", {"call_id": "c1", "tool": "edit", "args": edit}),
              _ev("t1", "worker_tool_result", "a1.1", {"call_id": "c1", "ok": True, "output": "edited"}),
              _ev("a2", "worker_action", "t1", {"action": "respond"}),
              _ev("a2.1", "worker_output", "a2", {"result": "Done."})]
    ctx = RunContext("r", "openclaw/chat", "train", "openclaw", None)
    views, _ = build_views(events, ctx, ViewsConfig(conversation_rows="turn"))
    call_row, answer_row = views["worker_sft"]
    written = '{"path":"src/a.py","oldText":"x = 1","newText":"x = 2"}'
    assert call_row["messages"][-1]["tool_calls"][0]["function"]["arguments"] == written  # the target
    assert answer_row["messages"][1]["tool_calls"][0]["function"]["arguments"] == written  # the context
