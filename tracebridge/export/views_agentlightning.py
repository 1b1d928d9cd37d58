"""Agent Lightning's messages format (``agentlightning/messages/<split>.jsonl``), pure.

Agent Lightning's ``TraceToMessages`` adapter gives ``OpenAIMessages`` rows, ``{"messages",
"tools"}`` in OpenAI's chat-completion parameter types (``ChatCompletionMessageParam``,
``ChatCompletionFunctionToolParam``): the OpenAI fine-tuning JSONL its users train on. This module
writes the role SFT rows (``planner_sft``, ``worker_sft``, ``verifier_sft``, the rows triplets are
made of) in that shape: every message reduced to the fields of its OpenAI type (``tool`` messages
lose the tool ``name``; assistant tool-call arguments are JSON strings), ``tools`` as a list of
function tools with ``parameters`` objects (None when the row offers none), plus our ``meta`` with
the ``role`` added, so a row leads back to its run. A conversation span row stays one row (its
assistant turns before ``meta.labels.context_messages`` are context: the same row as
``worker_sft``). ``tracebridge.ops.consumers.check_agentlightning`` checks the files with Agent
Lightning's own types.

The rows repeat what the SFT views hold in another shape, so the file is optional
(``views.agentlightning_messages``).
"""

from __future__ import annotations

from typing import Any

import orjson

from tracebridge.export.views import RunContext

MESSAGES = "agentlightning/messages"
ROLE_SFT_VIEWS = ("planner_sft", "worker_sft", "verifier_sft")
_PLAIN = frozenset({"role", "content"})


def _text(value: Any) -> Any:
    """Message content as OpenAI takes it: a string, a list of parts, or None (only assistant)."""
    if value is None or isinstance(value, (str, list)):
        return value
    return orjson.dumps(value).decode()


def _call(c: dict[str, Any], i: int) -> dict[str, Any]:
    fn = c.get("function") if isinstance(c.get("function"), dict) else c
    args = fn.get("arguments")
    return {"id": str(c.get("id") or f"call_{i}"), "type": "function",
            "function": {"name": str(fn.get("name")),
                         "arguments": args if isinstance(args, str) else orjson.dumps(args or {}).decode()}}


def al_message(m: dict[str, Any]) -> dict[str, Any]:
    """One chat message as its OpenAI parameter type holds it (the row's own dict when it already is)."""
    role = m.get("role")
    if m.keys() <= _PLAIN and isinstance(m.get("content"), str):
        return m
    if role == "assistant":
        out: dict[str, Any] = {"role": "assistant", "content": _text(m.get("content"))}
        calls = [c for c in m.get("tool_calls") or [] if isinstance(c, dict)]
        if calls:
            out["tool_calls"] = [_call(c, i) for i, c in enumerate(calls)]
        return out
    if role == "tool":
        return {"role": "tool", "content": _text(m.get("content")) or "", "tool_call_id": str(m.get("tool_call_id") or "")}
    return {"role": role, "content": _text(m.get("content")) or ""}


def al_tools(tools: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
    """Tool schemas as ``ChatCompletionFunctionToolParam`` (parameters as objects); None for none."""
    out = []
    for t in tools:
        fn = t.get("function") if isinstance(t.get("function"), dict) else t
        params = fn.get("parameters")
        if isinstance(params, str):
            params = orjson.loads(params)
        out.append({"type": "function", "function": {"name": str(fn.get("name")),
                                                     "description": str(fn.get("description") or ""),
                                                     "parameters": params if isinstance(params, dict) else {}}})
    return out or None


def al_messages(views: dict[str, list[dict[str, Any]]], ctx: RunContext) -> list[dict[str, Any]]:
    """The ``agentlightning/messages`` rows of one run's role SFT rows (pure). A row's ``tools`` are the
    SFT row's own (a JSON string with ``views.json_strings``): a recorded model call's row holds the tools
    that call was offered, which need not be the run's (``ctx.tools``: another call may have offered others)."""
    done: dict[int, dict[str, Any]] = {}  # id(message) -> its OpenAI form: rows repeat a run's messages
    converted: dict[Any, list[dict[str, Any]] | None] = {}  # a run's rows share a few tool lists
    out = []
    for view in ROLE_SFT_VIEWS:
        role = view.split("_")[0]
        for r in views.get(view, ()):
            out.append({"messages": [_converted(m, done) for m in r["messages"]],
                        "tools": _row_tools(r.get("tools"), converted), "meta": {**r["meta"], "role": role}})
    return out


def _row_tools(tools: Any, converted: dict[Any, list[dict[str, Any]] | None]) -> list[dict[str, Any]] | None:
    """``al_tools`` of a row's ``tools`` (a list, or its JSON string), made once per list in a run."""
    if not tools:
        return None
    key = tools if isinstance(tools, str) else id(tools)
    if key not in converted:
        schemas = orjson.loads(tools) if isinstance(tools, str) else tools
        converted[key] = al_tools([t for t in schemas if isinstance(t, dict)]) if isinstance(schemas, list) else None
    return converted[key]


def _converted(m: dict[str, Any], done: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """``al_message(m)``, made once per message object: a run's conversation rows share their
    message dicts (each row a longer prefix; 62,532 messages in the rows of 200 OpenClaw sessions,
    about 13,000 distinct). ``done`` is keyed by ``id``: valid while the rows, which hold every
    ``m``, are alive."""
    out = done.get(id(m))
    if out is None:
        out = done[id(m)] = al_message(m)
    return out
