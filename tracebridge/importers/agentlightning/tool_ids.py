"""Real ids for the tool calls of replies recorded without them (the LiteLLM proxy's ``call_K``),
taken from the later prompt of the same rollout that echoes the reply (``_reconcile``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tracebridge.importers.agentlightning.llm_calls import completion_calls, maybe_json

if TYPE_CHECKING:
    from tracebridge.importers.agentlightning.spans import _Builder


def _reconcile(b: _Builder) -> None:
    """Give the tool calls of a reply recorded without ids (``call_K``) the ids a later call of the rollout
    shows for them, so the reply, its tool events and the next prompt's tool messages share one id.

    The evidence: a later call's prompt continues this call's conversation (its first messages are this
    call's prompt, every one read) and the next message is an assistant message whose tool calls have ids
    and the reply's names and arguments (decoded), in the same order. The first such later call decides;
    one echo's ids go to one reply. No echo (the rollout's last call, an agent that rewrites its history,
    arguments that differ, an id the reply did record that differs): the ids stay ``call_K`` and the call is
    labelled ``tool_call_ids: unrecorded``."""
    taken: set[tuple[str, ...]] = set()
    for i, (prompt, action, made_up) in enumerate(b.calls):
        if not made_up:
            continue
        calls = action["llm"]["tool_calls"]
        ids = next((ids for later, _, _ in b.calls[i + 1:] if (ids := _echo(later, prompt, calls)) is not None
                    and ids not in taken and all(c["id"] in (e, *made_up) for c, e in zip(calls, ids))), None)
        if ids is None:
            action["labels"] = {**action.get("labels", {}), "tool_call_ids": "unrecorded"}
            b.out.tool_call_ids["unrecorded"] += 1
            continue
        taken.add(ids)
        for c, real in zip(calls, ids):
            c["id"] = real
        b.out.tool_call_ids["reconciled"] += 1
    for call, payload in b.claims:
        payload["call_id"] = call["id"]


def _echo(later: list[Any], prompt: list[Any], calls: list[dict[str, Any]]) -> tuple[str, ...] | None:
    """The ids of ``calls`` (a reply to ``prompt``) as the later prompt ``later`` holds them, if it does."""
    n = len(prompt)
    if not prompt or len(later) <= n or None in prompt or later[:n] != prompt:
        return None
    m = later[n]
    if not isinstance(m, dict) or m.get("role") != "assistant" or m.get("tool_calls") is calls:
        return None  # the last: a gap ``_prompt`` filled with this very reply is no echo
    missing: list[str] = []
    echo = completion_calls(m, missing)
    ids = tuple(c["id"] for c in echo)
    same = [(c["name"], maybe_json(c["arguments"])) for c in echo] == [
        (c["name"], maybe_json(c["arguments"])) for c in calls]
    return ids if same and not missing and len(set(ids)) == len(ids) else None
