"""Agent Lightning spans → schema-v2 events (pure; span dicts as ``Span.model_dump()`` gives).

One run per rollout. The task is the root ``planner_input``; then, parents first, in sequence order:
LLM-call spans (``gen_ai.*`` attributes) → ``worker_action`` with an ``llm`` block (prompt,
response, native tool calls, usage, latency; the call's token ids, where recorded, as the event's
``labels``); tool spans (``agentlightning.operation`` or ``tool.*`` attributes) → ``worker_tool_call`` +
``worker_tool_result`` (errors from the span status, classified); rewards → ``env_observation`` labelled
``{"reward": v}``, read as Agent Lightning's ``get_reward_value`` reads them (``emit_reward``'s
``agentlightning.reward.N.{name, value}`` on any span, the deprecated AgentOps ``@reward`` output
``{"type": "reward", "value": v}`` and 0.2's ``reward`` attribute on an annotation); exception spans →
``episode_error``; message, object (``emit_object``) and other annotation spans → ``env_observation``.
The agent's return value (None for stored spans, which do not hold it) closes the run as ``worker_output``
and ``episode_end``. Other spans are structure only: their children attach to the nearest mapped
ancestor, and their names are counted as drift, except AgentOps' session span, its ``tool_call.*``
spans (the tool calls of a model's reply, read into that call's ``llm`` block), LiteLLM's
``raw_gen_ai_request`` (the provider payload of the ``litellm_request`` span above it) and a second span
of a model call already mapped (the client's span and the LLM proxy's: the same ``gen_ai.response.id``,
overlapping times, an agreeing reply; see ``_kinds``). What a span holds that cannot be read (a reward that
is no finite number, token ids, message attributes, a second record of a span id, a time past the years
1-9999 or an end before the start) is listed in
``SpanRun.problems`` under its span id; the rest of the span is mapped.

How model-call spans become ``llm`` blocks (and the two instrumentation shapes read) is in ``llm_calls``.
A tool span with no ``tool.call.id`` (``agl.operation``) takes the id of the tool call it ran from the
model call before it (same tool and arguments, else same tool), so a call, its tool result and the next
prompt's tool message share one id. A reply whose tool calls were recorded without ids (LiteLLM's
``function_call`` records: ``call_K``) takes the ids of its echo in a later call's prompt (``_reconcile``).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import orjson

from tracebridge.importers.agentlightning.llm_calls import (
    Problems,
    llm_block,
    maybe_json,
    token_ids,
    unflatten,
)
from tracebridge.importers.agentlightning.rewards import ANNOTATION, reward_of, reward_problems
from tracebridge.importers.agentlightning.span_graph import (
    OPERATION,
    _children,
    _distinct,
    _same_call,
    close_tools,
    ordered_spans,
    unsound_parents,
)
from tracebridge.importers.agentlightning.tool_ids import _reconcile
from tracebridge.importers.openclaw.text import classify_tool_error
from tracebridge.schema.canonical import ts_from_epoch_ms

EXCEPTION = "agentlightning.exception"
MESSAGE = "agentlightning.message"
OBJECT = "agentlightning.object"
RAW_REQUEST = "raw_gen_ai_request"  # litellm: the provider payload of the ``litellm_request`` span above it
REPLY_TOOL_CALL = "tool_call."  # agentops: one child span per tool call of a model's reply
# kinds that are part of another span or of the tracer: no event, no drift
STRUCTURE = ("llm_tool_call", "session", "llm_raw", "llm_duplicate", "copy")
_LLM_NAME = re.compile(r"chat\.completion|completion|llm|litellm", re.IGNORECASE)
_LLM_ATTRS = ("gen_ai.prompt.", "gen_ai.completion.", "gen_ai.input.messages", "gen_ai.output.messages")


def span_kind(span: dict[str, Any]) -> str:
    """llm | llm_tool_call | llm_raw | tool | reward | exception | message | object | annotation | session | other
    (``llm_duplicate`` is given by ``spans_to_events``, which sees the other spans)."""
    name, attrs = span.get("name") or "", span.get("attributes") or {}
    if name == ANNOTATION:
        return "reward" if reward_of(name, attrs) is not None else "annotation"
    if name in (EXCEPTION, MESSAGE, OBJECT):
        return name.rsplit(".", 1)[1]
    if name.startswith(REPLY_TOOL_CALL) and "tool.call.id" in attrs:
        return "llm_tool_call"  # a tool call the model asked for, recorded by agentops: nothing ran
    if name == OPERATION or "tool.name" in attrs:
        return "tool"
    if any(k.startswith(_LLM_ATTRS) for k in attrs) or _LLM_NAME.search(name):
        return "llm"
    if name == RAW_REQUEST:
        return "llm_raw"
    if attrs.get("agentops.span.kind") == "session":
        return "session"  # AgentOpsTracer's root span of the trace
    return "reward" if reward_of(name, attrs) is not None else "other"


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
    # model calls whose offered tool schemas the spans held (``recorded``), and calls that offered or called
    # tools, or whose prompt holds tool calls or results, without them (``missing``: their rows fall back to
    # the run's schemas, inferred unless configured)
    tool_schemas: Counter[str] = field(default_factory=Counter)
    # (span id, attribute, reason): what a span holds that was not read (a bad reward, token ids, messages
    # cut short, a second record of one span id, a response id two calls share)
    problems: list[tuple[str, str, str]] = field(default_factory=list)
    # model calls whose reply's tool calls were recorded without ids: given those of their echo in a later
    # prompt (``reconciled``), or keeping ``call_K`` (``unrecorded``: no later prompt shows them)
    tool_call_ids: Counter[str] = field(default_factory=Counter)
    skewed: dict[Any, str] = field(default_factory=dict)  # span id → how its clock disagrees with the span order


def _iso(t: Any) -> str | None:
    """A span time (epoch seconds) in the schema's format; None when absent or not representable."""
    if not t or isinstance(t, bool) or not isinstance(t, (int, float)):
        return None
    try:
        return ts_from_epoch_ms(t * 1000)
    except (OverflowError, OSError, ValueError):  # beyond the years 1-9999, or NaN
        return None


def _time_problems(span: dict[str, Any]) -> list[tuple[str, str]]:
    """(attribute, reason) of each time of a span the run cannot hold as it is: the span is kept, but its
    events take the time of the event before them, or its latency is 0 (end before start)."""
    out, times = [], (span.get("start_time"), span.get("end_time"))
    for name, t in zip(("start_time", "end_time"), times):
        if t and _iso(t) is None:
            out.append((name, (f"{t!r} is no time the schema can hold (epoch seconds in the years 1-9999): its "
                               "events take the time of the event before them (the span is still ordered by it)")))
    if not out and all(isinstance(t, (int, float)) for t in times) and times[1] < times[0]:  # type: ignore[operator]
        out.append(("end_time", f"{times[1]!r} is before start_time {times[0]!r}: its latency is recorded as 0"))
    return out


class _Builder:
    def __init__(self, run_id: str) -> None:
        self.run_id, self.out, self.seq, self.last, self.last_ts = run_id, SpanRun(), 0, None, ""
        self.conv: list[Any] = []  # the last model call's prompt + reply: fills the next prompt's gaps
        self.pending: list[dict[str, Any]] = []  # its tool calls no tool span has claimed yet
        self.calls: list[tuple[list[Any], dict[str, Any], list[str]]] = []  # (prompt, action, made-up ids)
        self.claims: list[tuple[dict[str, Any], dict[str, Any]]] = []  # (model's tool call, tool event payload)
        self.reward_seq = -1  # the sequence_id of the reward that is the run's so far
        self.open_tools: list[tuple[Any, dict[str, Any], str, Any]] = []  # (span id, result, call event, end)

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

    def note(self, span: dict[str, Any], problems: Problems) -> None:
        """Add a span's problems (attribute, reason) to the run's, under its span id."""
        self.out.problems.extend((str(span.get("span_id")), a, why) for a, why in problems)


def _tool(b: _Builder, span: dict[str, Any], attrs: dict[str, Any], parent: str | None) -> str:
    name = attrs.get("agentlightning.operation.name") or attrs.get("tool.name") or span.get("name") or "tool"
    args = unflatten(attrs, "agentlightning.operation.input")
    if args is None:
        args = maybe_json(attrs.get("tool.parameters"))
    args = args if isinstance(args, dict) else ({} if args is None else {"input": args})
    output = attrs.get("agentlightning.operation.output", unflatten(attrs, "agentlightning.operation.output"))
    claimed = None if attrs.get("tool.call.id") else _claim(b.pending, str(name), args)
    call_id = str(attrs.get("tool.call.id") or (claimed or {}).get("id") or span.get("span_id") or b.seq)
    status = span.get("status") or {}
    ok = status.get("status_code") != "ERROR"
    b.out.tools.add(str(name))
    asked = {"call_id": call_id, "tool": str(name), "args": args}
    call = b.emit("worker_tool_call", "worker", asked, parent, span.get("start_time"))
    result: dict[str, Any] = {"call_id": call_id, "ok": ok, "output": maybe_json(output)}
    if not ok:
        msg = _error(span, "ToolError")[1] or "tool failed"
        result["error"] = {"kind": classify_tool_error(msg).value, "message": msg[:2000]}
    start, end = span.get("start_time"), span.get("end_time")
    if isinstance(start, (int, float)) and isinstance(end, (int, float)):
        result["latency_ms"] = max(0.0, (end - start) * 1000.0)
    b.open_tools.append((span.get("span_id"), result, call, end))  # written once what ran inside it is
    if claimed is not None:  # its id may be reconciled later (``_reconcile``): the tool events follow it
        b.claims += [(claimed, asked), (claimed, result)]
    return call


def _claim(pending: list[dict[str, Any]], name: str, args: Any) -> dict[str, Any] | None:
    """The model's tool call that a tool span without an id ran: the first unclaimed call of that tool
    with the same arguments, else of that tool (so the call's id is the tool message's)."""
    same = [c for c in pending if c["name"] == name]
    call = next((c for c in same if maybe_json(c["arguments"]) == args), same[0] if same else None)
    if call is not None:
        pending.remove(call)
    return call


def _llm_action(b: _Builder, span: dict[str, Any], parent: str | None, first_tool: dict[str, Any] | None,
                parts: list[dict[str, Any]]) -> str:
    requests = [s for s in parts if span_kind(s) == "llm_tool_call"]
    problems: Problems = []
    llm, model, prompt, made_up = llm_block(span, span.get("attributes") or {}, requests, b.conv, problems)
    b.note(span, problems)
    b.out.model = b.out.model or model
    b.out.tokens += llm["usage"]["input_tokens"] + llm["usage"]["output_tokens"]
    b.out.cost += llm["usage"]["cost_usd"]
    if llm.get("tools"):
        b.out.tool_schemas["recorded"] += 1
    elif llm.get("toolset_hash") or llm.get("tool_calls") or any(
            isinstance(m, dict) and (m.get("tool_calls") or m.get("role") in ("tool", "function")) for m in prompt):
        b.out.tool_schemas["missing"] += 1
    reply: dict[str, Any] = {"role": "assistant"}
    labels: dict[str, Any] = {}
    for s in [span, *parts]:  # the call's own span first, then the other records of it
        found: Problems = []
        ids = token_ids(s.get("attributes") or {}, found)
        labels = labels or ids
        b.note(s, found)
    if llm["response"] is not None:
        reply["content"] = llm["response"]
    payload: dict[str, Any] = {"action": "respond", "reasoning_summary": None}
    if llm.get("tool_calls"):  # the model called tools natively (their spans may be siblings)
        c = llm["tool_calls"][0]
        args = maybe_json(c["arguments"])
        payload.update(action="tool_call", tool=c["name"], args=args if isinstance(args, dict) else None)
        reply["tool_calls"] = llm["tool_calls"]
    elif first_tool is not None:  # the call's tool spans are its children
        ta = first_tool.get("attributes") or {}
        args = unflatten(ta, "agentlightning.operation.input")
        payload.update(action="tool_call", args=args if isinstance(args, dict) else None,
                       tool=str(ta.get("agentlightning.operation.name") or ta.get("tool.name") or first_tool.get("name")))
    b.conv, b.pending = [*prompt, reply], list(llm.get("tool_calls") or [])
    action = b.emit("worker_action", "worker", payload, parent, span.get("start_time"), llm, labels)
    b.calls.append((prompt, b.out.events[-1], made_up))
    if (span.get("status") or {}).get("status_code") == "ERROR":  # the call raised: the agent saw no reply
        kind, msg = _error(span, "LLMCallFailed")
        b.emit("episode_error", "worker", {"kind": kind, "message": msg, "recoverable": True}, action,
               span.get("end_time"))
    return action


def _error(span: dict[str, Any], default: str) -> tuple[str, str]:
    """(exception type, message) of a failed span: the status description, else the message of its
    ``exception`` event (OpenTelemetry's ``record_exception``) or ``exception.*`` attributes; the type
    from the event or attributes, else ``default``."""
    attrs = span.get("attributes") or {}
    event = next((e.get("attributes") or {} for e in span.get("events") or []
                  if isinstance(e, dict) and e.get("name") == "exception"), {})
    kind = event.get("exception.type") or attrs.get("exception.type") or default
    msg = (span.get("status") or {}).get("description") or event.get("exception.message") or \
        attrs.get("exception.message") or ""
    return str(kind), str(msg)[:2000]


def _map_span(b: _Builder, span: dict[str, Any], kind: str, parent: str | None,
              first_tool: dict[str, Any] | None = None, parts: list[dict[str, Any]] | None = None) -> str | None:
    attrs = span.get("attributes") or {}
    start = span.get("start_time")
    if kind == "llm":
        return _llm_action(b, span, parent, first_tool, parts or [])
    if kind == "tool":
        return _tool(b, span, attrs, parent)
    if kind == "reward":
        value, dims = reward_of(span.get("name") or "", attrs)  # type: ignore[misc]
        seq = span.get("sequence_id") if type(span.get("sequence_id")) is int else 0
        if seq >= b.reward_seq:  # find_final_reward's: the last in store (sequence_id) order, not by clock
            b.out.final_reward, b.reward_seq = value, seq
        return b.emit("env_observation", "env", {"observation": {"reward": value, "dimensions": dims},
                                                 "source": "agentlightning.reward"}, parent, start,
                      labels={"reward": value})
    if kind == "exception":
        return b.emit("episode_error", "worker", {"kind": str(attrs.get("exception.type") or "Exception"),
                                                  "message": str(attrs.get("exception.message") or "")[:2000],
                                                  "recoverable": True}, parent, start)
    if kind in ("message", "object", "annotation"):
        return b.emit("env_observation", "env", {"observation": _observation(kind, attrs),
                                                 "source": f"agentlightning.{kind}"}, parent, start)
    return None


def _observation(kind: str, attrs: dict[str, Any]) -> Any:
    """What a message (its body), object (``emit_object``'s value, decoded as ``get_object_value`` does)
    or annotation span (its attributes, nested: tags, links, metadata) holds."""
    if kind == "message":
        return attrs.get("agentlightning.message.body")
    if kind == "annotation":
        nested = unflatten(attrs, "agentlightning")
        own = nested if isinstance(nested, dict) else {} if nested is None else {"agentlightning": nested}
        return _jsonable({**own, **{k: v for k, v in attrs.items() if not k.startswith("agentlightning.")}})
    if "agentlightning.object.json" in attrs:
        return maybe_json(attrs["agentlightning.object.json"])
    literal, kind_of = attrs.get("agentlightning.object.literal"), attrs.get("agentlightning.object.type")
    try:
        return {"int": int, "float": float, "bool": lambda v: v == "True"}.get(kind_of, str)(literal)
    except (TypeError, ValueError):
        return literal


def spans_to_events(spans: list[dict[str, Any]], run_id: str, task: Any, result: Any = None,
                    error: BaseException | None = None) -> SpanRun:
    """Map one rollout's spans (plus its task, result and error) to the events of one run."""
    b = _Builder(run_id)
    ordered = ordered_spans(_distinct(spans, b), b.out.skewed)
    goal = task.get("goal") or task.get("question") if isinstance(task, dict) else None
    root = b.emit("planner_input", "planner", {"goal": str(goal if goal is not None else task),
                                               "observation": _jsonable(task)}, None,
                  ordered[0].get("start_time") if ordered else None)
    mapped: dict[str, str] = {}
    parents = {s.get("span_id"): s.get("parent_id") for s in ordered}
    kinds, same_call = _kinds(ordered, b)
    first_tool, parts = _children(ordered, kinds, same_call)
    unsound = unsound_parents(ordered)
    for span, kind in zip(ordered, kinds):
        b.out.kinds[kind] += 1
        if span.get("span_id") in unsound:
            b.note(span, [("parent_id", unsound[span.get("span_id")])])
        b.note(span, reward_problems(span.get("name") or "", span.get("attributes") or {}))
        b.note(span, _time_problems(span))
        anc, parent, seen = span.get("parent_id"), None, set()
        while anc is not None and parent is None and anc not in seen:  # nearest mapped ancestor (a parent
            seen.add(anc)  # cycle, or a span its own parent, ends the walk), else the previous event
            parent, anc = mapped.get(anc), parents.get(anc)
        sid = span.get("span_id")
        if b.open_tools:
            close_tools(b, parents, sid)
        eid = _map_span(b, span, kind, parent or b.last or root, first_tool.get(sid), parts.get(sid))
        if eid is None and kind not in STRUCTURE:
            b.out.drift[f"span:{span.get('name')}"] += 1
        elif span.get("span_id") and eid is not None:
            mapped[span["span_id"]] = eid
    close_tools(b, parents)
    _reconcile(b)
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


def _kinds(ordered: list[dict[str, Any]], b: _Builder) -> tuple[list[str], dict[Any, Any]]:
    """``span_kind`` of each span, and which ``llm_duplicate`` span is a second record of which call.

    An LLM span is the same call as an earlier one (the agent's client and Agent Lightning's LLM proxy
    each record it; Agent Lightning's adapters count a response once) when it has the earlier span's
    non-empty ``gen_ai.response.id``, their times overlap (one request in flight) and their replies agree
    where both recorded one (text, tool names and arguments). A shared id alone is no evidence: a provider
    may return one id for every call, and merging two calls would lose one; such a span stays a call and
    is a problem."""
    kinds: list[str] = []
    same_call: dict[Any, Any] = {}
    calls: dict[str, list[dict[str, Any]]] = {}  # response id → the spans mapped as calls with it
    for s in ordered:
        kind = span_kind(s)
        rid = (s.get("attributes") or {}).get("gen_ai.response.id") if kind == "llm" else None
        if isinstance(rid, str) and rid:
            earlier = calls.setdefault(rid, [])
            match = next((e for e in earlier if _same_call(e, s)), None)
            if match is not None:
                kind, same_call[s.get("span_id")] = "llm_duplicate", match.get("span_id")
            else:
                if earlier:
                    b.note(s, [("gen_ai.response.id", (f"{rid!r} is also the id of span {earlier[0].get('span_id')}, "
                                                      "whose time or reply differs: mapped as a call of its own"))])
                earlier.append(s)
        kinds.append(kind)
    return kinds, same_call


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
