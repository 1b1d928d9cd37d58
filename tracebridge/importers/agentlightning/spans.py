"""Agent Lightning spans → schema-v2 events (pure; span dicts as ``Span.model_dump()`` gives).

One run per rollout. The task is the root ``planner_input``; then, in span start order:
LLM-call spans (``gen_ai.*`` attributes) → ``worker_action`` with an ``llm`` block (prompt,
response, usage, latency); tool spans (``agentlightning.operation`` or ``tool.*`` attributes) →
``worker_tool_call`` + ``worker_tool_result`` (errors from the span status, classified);
reward annotations (``emit_reward``) → ``env_observation`` labelled ``{"reward": v}``;
exception spans → ``episode_error``; message spans → ``env_observation``. The agent's return
value (None for stored spans, which do not hold it) closes the run as ``worker_output`` and
``episode_end``. Other spans are structure only:
their children attach to the nearest mapped ancestor, and their names are counted as drift.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import orjson

from tracebridge.importers.openclaw.content import MAX_TOKENS
from tracebridge.importers.openclaw.text import classify_tool_error
from tracebridge.schema.canonical import canonical_json, sha256_json, ts_from_epoch_ms

OPERATION = "agentlightning.operation"
ANNOTATION = "agentlightning.annotation"
EXCEPTION = "agentlightning.exception"
MESSAGE = "agentlightning.message"
_LLM_NAME = re.compile(r"chat\.completion|completion|llm|litellm", re.IGNORECASE)


def unflatten(attrs: dict[str, Any], prefix: str) -> Any:
    """Nested dict/list of the attributes under ``prefix.`` (numeric keys become list indices)."""
    cut = len(prefix) + 1
    tree: dict[str, Any] = {}
    for key in sorted(k for k in attrs if k.startswith(prefix + ".")):
        node = tree
        parts = key[cut:].split(".")
        for p in parts[:-1]:
            nxt = node.get(p)
            if not isinstance(nxt, dict):
                nxt = node[p] = {}
            node = nxt
        node[parts[-1]] = attrs[key]
    return _listify(tree) if tree else None


def _listify(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    out = {k: _listify(v) for k, v in node.items()}
    if out and all(k.isdigit() for k in out):
        return [out[k] for k in sorted(out, key=int)]
    return out


def _maybe_json(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in "{[":
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            return value
    return value


def reward_of(attrs: dict[str, Any]) -> tuple[float, dict[str, float]] | None:
    """(primary reward, all dimensions) of an ``emit_reward`` annotation, or None."""
    dims = unflatten(attrs, "agentlightning.reward")
    if not isinstance(dims, list) or not dims or not isinstance(dims[0], dict):
        return None
    values = {str(d.get("name", i)): float(d["value"]) for i, d in enumerate(dims)
              if isinstance(d, dict) and isinstance(d.get("value"), (int, float))}
    first = dims[0].get("value")
    return (float(first), values) if isinstance(first, (int, float)) else None


def span_kind(span: dict[str, Any]) -> str:
    """llm | tool | reward | exception | message | other."""
    name, attrs = span.get("name") or "", span.get("attributes") or {}
    if name == ANNOTATION and reward_of(attrs) is not None:
        return "reward"
    if name == EXCEPTION:
        return "exception"
    if name == MESSAGE:
        return "message"
    if name == OPERATION or "tool.name" in attrs:
        return "tool"
    if any(k.startswith(("gen_ai.prompt.", "gen_ai.completion.")) for k in attrs) or _LLM_NAME.search(name):
        return "llm"
    return "other"


@dataclass
class SpanRun:
    """The events of one rollout and what the mapping saw."""

    events: list[dict[str, Any]] = field(default_factory=list)
    kinds: Counter[str] = field(default_factory=Counter)
    drift: Counter[str] = field(default_factory=Counter)
    final_reward: float | None = None
    model: str | None = None
    tokens: int = 0
    cost: float = 0.0
    tools: set[str] = field(default_factory=set)


def _amount(value: Any, limit: float) -> float:
    """A usage attribute (tokens, cost) as a number in [0, limit]; 0 for anything else (a string, a
    list, NaN, a negative or absurd value), which would otherwise fail the whole rollout."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= limit:
        return 0
    return value


def _iso(t: Any) -> str | None:
    """A span time (epoch seconds) in the schema's format; None when absent or not representable."""
    if not t or isinstance(t, bool) or not isinstance(t, (int, float)):
        return None
    try:
        return ts_from_epoch_ms(t * 1000)
    except (OverflowError, OSError, ValueError):  # beyond the years 1-9999, or NaN
        return None


class _Builder:
    def __init__(self, run_id: str) -> None:
        self.run_id, self.out, self.seq, self.last, self.last_ts = run_id, SpanRun(), 0, None, ""

    def emit(self, etype: str, role: str, payload: dict[str, Any], parent: str | None, t: float | None,
             llm: dict[str, Any] | None = None, labels: dict[str, Any] | None = None) -> str:
        self.seq += 1
        eid = f"{self.run_id}:{self.seq:06d}"
        ts = _iso(t) or self.last_ts or "1970-01-01T00:00:00.000Z"
        ts = max(ts, self.last_ts)  # one clock, monotonic in file order
        ev: dict[str, Any] = {"run_id": self.run_id, "step": 0, "event_id": eid, "event_type": etype,
                              "timestamp": ts, "parent_event_id": parent, "role": role, "payload": payload}
        if parent is None:
            ev["root"] = True
        if llm is not None:
            ev["llm"] = llm
        if labels:
            ev["labels"] = labels
        self.out.events.append(ev)
        self.last, self.last_ts = eid, ts
        return eid


def _llm_block(span: dict[str, Any], attrs: dict[str, Any]) -> tuple[dict[str, Any], str]:
    prompt = unflatten(attrs, "gen_ai.prompt") or []
    completion = unflatten(attrs, "gen_ai.completion") or []
    request = unflatten(attrs, "gen_ai.request") or {}
    request = request if isinstance(request, dict) else {}
    model = str(request.get("model") or attrs.get("gen_ai.response.model") or "unknown")
    params = {k: v for k, v in request.items() if k not in ("model", "functions", "messages")}
    first = completion[0] if isinstance(completion, list) and completion and isinstance(completion[0], dict) else {}
    response = first.get("content") if isinstance(first.get("content"), str) else None
    functions = request.get("functions")
    ins = attrs.get("gen_ai.usage.prompt_tokens", attrs.get("gen_ai.usage.input_tokens", 0))
    outs = attrs.get("gen_ai.usage.completion_tokens", attrs.get("gen_ai.usage.output_tokens", 0))
    start, end = span.get("start_time"), span.get("end_time")
    latency = max(0.0, (end - start) * 1000.0) if isinstance(start, (int, float)) and isinstance(end, (int, float)) else 0.0
    usage = {"input_tokens": int(_amount(ins, MAX_TOKENS)), "output_tokens": int(_amount(outs, MAX_TOKENS)),
             "cost_usd": float(_amount(attrs.get("gen_ai.usage.cost"), MAX_TOKENS)), "latency_ms": latency}
    block = {"model": model, "rendered_prompt": canonical_json(prompt).decode(), "prompt_hash": sha256_json(prompt),
             "config_hash": sha256_json({"model": model, "params": params}), "params": params,
             "response": response, "usage": usage}
    if isinstance(functions, list) and functions:  # the tools offered (their schemas stay out of every event)
        block["toolset_hash"] = sha256_json(functions)
    calls = completion_calls(first)
    if calls:
        block["tool_calls"] = calls
    return block, model


def completion_calls(completion: dict[str, Any]) -> list[dict[str, Any]]:
    """The tool calls of a ``gen_ai.completion.N`` record as ``{id, name, arguments}`` (arguments an
    object when they are JSON, else the string as given); calls without a name are left out."""
    out = []
    for i, c in enumerate(completion.get("tool_calls") or []):
        fn = c.get("function") if isinstance(c, dict) and isinstance(c.get("function"), dict) else c
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str) or not fn["name"]:
            continue
        args = _maybe_json(fn.get("arguments"))
        out.append({"id": str(c.get("id") or f"call_{i}"), "name": fn["name"], "arguments": {} if args is None else args})
    return out


def _tool(b: _Builder, span: dict[str, Any], attrs: dict[str, Any], parent: str | None) -> str:
    name = attrs.get("agentlightning.operation.name") or attrs.get("tool.name") or span.get("name") or "tool"
    args = unflatten(attrs, "agentlightning.operation.input")
    if args is None:
        args = _maybe_json(attrs.get("tool.parameters"))
    args = args if isinstance(args, dict) else ({} if args is None else {"input": args})
    output = attrs.get("agentlightning.operation.output", unflatten(attrs, "agentlightning.operation.output"))
    call_id = str(attrs.get("tool.call.id") or span.get("span_id") or b.seq)
    status = span.get("status") or {}
    ok = status.get("status_code") != "ERROR"
    b.out.tools.add(str(name))
    call = b.emit("worker_tool_call", "worker", {"call_id": call_id, "tool": str(name), "args": args}, parent,
                  span.get("start_time"))
    result: dict[str, Any] = {"call_id": call_id, "ok": ok, "output": _maybe_json(output)}
    if not ok:
        msg = str(status.get("description") or attrs.get("exception.message") or "tool failed")
        result["error"] = {"kind": classify_tool_error(msg).value, "message": msg[:2000]}
    start, end = span.get("start_time"), span.get("end_time")
    if isinstance(start, (int, float)) and isinstance(end, (int, float)):
        result["latency_ms"] = max(0.0, (end - start) * 1000.0)
    b.emit("worker_tool_result", "worker", result, call, end)
    return call


def _map_span(b: _Builder, span: dict[str, Any], kind: str, parent: str | None,
              first_tool: dict[str, Any] | None = None) -> str | None:
    attrs = span.get("attributes") or {}
    start = span.get("start_time")
    if kind == "llm":
        llm, model = _llm_block(span, attrs)
        b.out.model = b.out.model or model
        b.out.tokens += llm["usage"]["input_tokens"] + llm["usage"]["output_tokens"]
        b.out.cost += llm["usage"]["cost_usd"]
        payload: dict[str, Any] = {"action": "respond", "reasoning_summary": None}
        if llm.get("tool_calls"):  # the model called tools natively (their spans may be siblings)
            c = llm["tool_calls"][0]
            payload.update(action="tool_call", tool=c["name"],
                           args=c["arguments"] if isinstance(c["arguments"], dict) else None)
        elif first_tool is not None:  # the call's tool spans are its children
            ta = first_tool.get("attributes") or {}
            args = unflatten(ta, "agentlightning.operation.input")
            payload.update(action="tool_call", args=args if isinstance(args, dict) else None,
                           tool=str(ta.get("agentlightning.operation.name") or ta.get("tool.name") or first_tool.get("name")))
        return b.emit("worker_action", "worker", payload, parent, start, llm)
    if kind == "tool":
        return _tool(b, span, attrs, parent)
    if kind == "reward":
        value, dims = reward_of(attrs)  # type: ignore[misc]
        b.out.final_reward = value
        return b.emit("env_observation", "env", {"observation": {"reward": value, "dimensions": dims},
                                                 "source": "agentlightning.reward"}, parent, start,
                      labels={"reward": value})
    if kind == "exception":
        return b.emit("episode_error", "worker", {"kind": str(attrs.get("exception.type") or "Exception"),
                                                  "message": str(attrs.get("exception.message") or "")[:2000],
                                                  "recoverable": True}, parent, start)
    if kind == "message":
        return b.emit("env_observation", "env", {"observation": attrs.get("agentlightning.message.body"),
                                                 "source": "agentlightning.message"}, parent, start)
    return None


def spans_to_events(spans: list[dict[str, Any]], run_id: str, task: Any, result: Any = None,
                    error: BaseException | None = None) -> SpanRun:
    """Map one rollout's spans (plus its task, result and error) to the events of one run."""
    b = _Builder(run_id)
    ordered = sorted(spans, key=lambda s: (s.get("start_time") or 0.0, s.get("sequence_id") or 0))
    goal = task.get("goal") or task.get("question") if isinstance(task, dict) else None
    root = b.emit("planner_input", "planner", {"goal": str(goal if goal is not None else task),
                                               "observation": _jsonable(task)}, None,
                  ordered[0].get("start_time") if ordered else None)
    mapped: dict[str, str] = {}
    parents = {s.get("span_id"): s.get("parent_id") for s in ordered}
    first_tool: dict[Any, dict[str, Any]] = {}
    for s in ordered:
        if s.get("parent_id") is not None and span_kind(s) == "tool":
            first_tool.setdefault(s["parent_id"], s)
    for span in ordered:
        kind = span_kind(span)
        b.out.kinds[kind] += 1
        anc, parent = span.get("parent_id"), None
        while anc is not None and parent is None:  # nearest mapped ancestor, else the previous event
            parent, anc = mapped.get(anc), parents.get(anc)
        eid = _map_span(b, span, kind, parent or b.last or root, first_tool.get(span.get("span_id")))
        if eid is None:
            b.out.drift[f"span:{span.get('name')}"] += 1
        elif span.get("span_id"):
            mapped[span["span_id"]] = eid
    end_t = max((s.get("end_time") or 0.0 for s in ordered), default=None) or None
    b.emit("worker_output", "worker", {"result": _jsonable(result), "status": "failed" if error else "done"},
           b.last, end_t)
    if error is not None:
        b.emit("episode_error", "worker", {"kind": type(error).__name__, "message": _text(error, 2000),
                                           "recoverable": False}, b.last, end_t)
    success = error is None and (b.out.final_reward is None or b.out.final_reward > 0)
    outcome = "" if error is not None or result is None else _text(result, 500)  # stored spans hold no result
    b.emit("episode_end", "orchestrator", {"success": success, "outcome": outcome,
                                           "failure_class": type(error).__name__ if error else None}, b.last, end_t)
    return b.out


def _text(value: Any, limit: int) -> str:
    """``str(value)[:limit]``; a broken ``__str__`` (the agent's object) must not lose the run."""
    try:
        return str(value)[:limit]
    except Exception:  # noqa: BLE001
        return f"<{type(value).__name__}: str() failed>"


def _jsonable(value: Any) -> Any:
    try:
        return orjson.loads(orjson.dumps(value, default=str))
    except (TypeError, orjson.JSONEncodeError):
        return repr(value)
