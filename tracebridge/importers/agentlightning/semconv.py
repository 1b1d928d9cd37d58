"""Reading what a span could not hold whole: GenAI semantic-convention messages (``{role, parts}``,
LiteLLM's ``gen_ai.input/output.messages``) as OpenAI chat messages, each unreadable one named, and
the problem lines every reader of span attributes adds to (``Problems``: ``(attribute, reason)``,
listed by the importer as ``file:line: span <id>: <attribute>: <reason>``)."""

from __future__ import annotations

from typing import Any

import orjson

Problems = list[tuple[str, str]]  # (attribute, reason): what a span holds that could not be read


def _note(problems: Problems | None, attribute: str, reason: str) -> None:
    if problems is not None:
        problems.append((attribute, reason))


def preview(value: Any, limit: int = 80) -> str:
    """A short ``repr`` of a bad value for a problem line (a value may be megabytes)."""
    if isinstance(value, str):
        return repr(value[:limit]) + (f"... ({len(value)} characters)" if len(value) > limit else "")
    if isinstance(value, (list, dict)) and len(value) >= 64:
        return f"<{type(value).__name__} of {len(value)}>"
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def semconv_messages(messages: Any, key: str = "messages", problems: Problems | None = None) -> list[Any]:
    """GenAI semantic-convention messages (``{role, parts}``) as OpenAI chat messages: text parts as the
    content (one part: its text; several: OpenAI text parts), ``tool_call`` parts as ``tool_calls``, a
    ``tool_call_response`` part as a tool message; parts of other types (an image) kept as content parts.
    A message that cannot be read whole (no object with a role, ``parts`` or ``tool_calls`` no list of
    objects, a part without a type, a text part whose content is no string) is None (as a
    ``gen_ai.prompt.N`` gap: no row teaches a message cut short), its reason added to ``problems`` as
    ``key[i]...``."""
    if not isinstance(messages, list):
        return []
    out = []
    for i, m in enumerate(messages):
        why = _unreadable(m)
        if why is not None:
            _note(problems, f"{key}[{i}]{why[0]}", why[1])
        out.append(None if why is not None else _semconv_message(m))
    return out


def _unreadable(m: Any) -> tuple[str, str] | None:
    """(where in the message, why) it cannot be read whole; None when it can."""
    if not isinstance(m, dict) or not isinstance(m.get("role"), str):
        return "", f"not a message object with a role: {preview(m)}"
    for name in ("parts", "tool_calls"):
        items = m.get(name)
        if items is not None and not (isinstance(items, list) and all(isinstance(x, dict) for x in items)):
            return f".{name}", f"not a list of objects: {preview(items)}"
    for j, p in enumerate(m.get("parts") or []):
        if not isinstance(p.get("type"), str):
            return f".parts[{j}]", f"a part without a type: {preview(p)}"
        if p["type"] == "text" and not isinstance(p.get("content"), (str, type(None))):
            return f".parts[{j}].content", f"a text part whose content is no string: {preview(p.get('content'))}"
        if p["type"] == "tool_call" and not (isinstance(p.get("name"), str) and p["name"]):
            return f".parts[{j}].name", f"a tool call without a name: {preview(p.get('name'))}"
    return None


def _semconv_message(m: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"role": m["role"]}
    content: list[Any] = []
    calls = list(m.get("tool_calls") or [])
    for p in m.get("parts") or []:
        kind = p["type"]
        if kind == "text":
            content.append({"type": "text", "text": p.get("content") or ""})
        elif kind == "tool_call" and not m.get("tool_calls"):
            args = p.get("arguments")
            calls.append({"id": p.get("id"), "name": p.get("name"),
                          "arguments": args if isinstance(args, str) else orjson.dumps(args or {}).decode()})
        elif kind == "tool_call_response":
            out["role"], out["tool_call_id"] = "tool", str(p.get("id") or m.get("tool_call_id") or "")
            resp = p.get("response")
            content.append({"type": "text", "text": resp if isinstance(resp, str) else orjson.dumps(resp).decode()})
        elif kind != "reasoning":  # reasoning: no content the model writes back
            content.append(p)
    if all(isinstance(c, dict) and c.get("type") == "text" for c in content):
        out["content"] = "".join(c["text"] for c in content) if len(content) <= 1 else content
    else:
        out["content"] = content
    if content == [] and calls:
        out["content"] = None
    if calls:
        out["tool_calls"] = calls
    if m.get("tool_call_id") is not None:
        out["tool_call_id"] = str(m["tool_call_id"])
    if m.get("finish_reason") is not None:
        out["finish_reason"] = m["finish_reason"]
    return out
