"""OpenClaw's message rows (a user turn, a model turn with its tool calls, a tool result) → schema-v2
events, for ``SessionMapper`` (pure; the mapper's ``feed`` dispatches on the message's role here, the
rarer row types to ``rows.py``). The mapping is documented in docs/openclaw-mapping.md."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tracebridge.importers.openclaw import fields, rows
from tracebridge.importers.openclaw.content import split_content, tool_args, usage_of
from tracebridge.importers.openclaw.keys import (
    ASSISTANT_KEYS,
    INJECTED_MODEL,
    MIRROR_MODEL,
    MODEL_TURN_KEYS,
    OPENCLAW_ASSISTANT_KEYS,
    STOP_ACTIONS,
    TOOL_RESULT_KEYS,
    TOOL_RESULT_TURN_KEYS,
    USER_KEYS,
    USER_TURN_KEYS,
    call_id,
)
from tracebridge.importers.openclaw.text import (
    classify_llm_error,
    classify_tool_error,
    split_user_text,
)
from tracebridge.schema.canonical import sha256_json

if TYPE_CHECKING:
    from tracebridge.importers.openclaw.mapping import SessionMapper

EMPTY_PROMPT_HASH = sha256_json("")


def user(m: SessionMapper, row: dict[str, Any], msg: dict[str, Any], rid: str,
         out: list[dict[str, Any]]) -> None:
    """A user turn: the goal (its first words) as ``planner_input``, or a system event as ``env_observation``."""
    if not USER_KEYS.issuperset(msg):
        if msg.get("excludeFromContext") is True:  # never shown to the model: no turn, no goal
            rows.context_free_message(m, row, msg, rid, out)
            return
        m.check_keys(msg, USER_TURN_KEYS, "message.user")
        obs: dict[str, Any] = rows.message_facts(msg)
    else:
        obs = {}
    text, _, _, images, other = split_content(msg.get("content"), m.drift, "message.user", m.wrong)
    ut = split_user_text(text) if text else None
    if ut is not None and ut.channel:
        obs["channel"] = ut.channel
        m.channel = m.channel or ut.channel.get("channel")
    if ut is not None and ut.system_events:
        obs["system_events"] = ut.system_events
    if images:
        obs["images"] = images
    if "provenance" in msg:
        obs["provenance"] = msg["provenance"]
    if other:
        obs["other_content"] = other
    if m.turns:
        m.step += 1
    m.turns += 1
    m.failed.clear()
    parent, ts = m.parent(row), m.ts(row, msg)
    text = ut.text if ut is not None else ""
    if not text and not images:
        m.counts["system_event_turns"] += 1
        if m.kind is None:
            m.kind = "cron" if any(e["kind"] == "cron" for e in obs.get("system_events", ())) else "system"
        m.event(out, rid, "env_observation", "env", {"observation": obs, "source": "openclaw.system_event"},
                parent, ts)
        return
    if not m.goal:  # the first user words: a photo without a caption has none, the next message's are
        first, m.goal = m.goal is None, text
        if first and m.kind is None:
            m.kind = ("heartbeat" if text.startswith("Read HEARTBEAT.md")
                      else "telegram" if m.channel == "telegram" else "chat")
    m.event(out, rid, "planner_input", "planner", {"goal": text, "observation": obs or None}, parent, ts)


def llm_block(m: SessionMapper, msg: dict[str, Any], response: str, model: Any,
              served: Any = None) -> dict[str, Any]:
    """The ``llm`` block of a model turn; ``served`` is the message's ``responseModel`` (the model
    that answered, when a router such as OpenRouter's ``auto`` picked one), kept in ``params``."""
    provider, api = msg.get("provider"), msg.get("api")
    provider = provider if type(provider) is str else m.provider
    model = model if type(model) is str else m.model
    api = api if type(api) is str else m.api
    key = (provider, model, api, m.thinking, served)
    cached = m.params_cache.get(key)
    if cached is None:
        params = {"provider": provider, "api": api, "thinking_level": m.thinking}
        if type(served) is str and served != model:
            params["response_model"] = served
        name = f"{provider}/{model}" if provider and model else (model or "unknown")
        cached = (params, sha256_json({"model": name, "params": params}), name)
        m.params_cache[key] = cached
        if m.first_model is None and model:
            m.first_model = {"model": name, "params": params}
    m.used_model = cached[2]
    inp, outp, usd = usage_of(msg.get("usage"), m.wrong)
    m.tokens += inp + outp
    m.cost += usd
    return {"model": cached[2], "rendered_prompt": "", "prompt_hash": EMPTY_PROMPT_HASH,
            "config_hash": cached[1], "params": cached[0], "response": response,
            "usage": {"input_tokens": inp, "output_tokens": outp, "cost_usd": usd, "latency_ms": 0.0}}


def assistant(m: SessionMapper, row: dict[str, Any], msg: dict[str, Any], rid: str,
              out: list[dict[str, Any]]) -> None:
    """A model turn: ``worker_action`` (with ``llm``), its tool calls, then its reply or error."""
    text, thinking, calls, images, _ = split_content(msg.get("content"), m.drift, "message.assistant", m.wrong)
    stop = msg.get("stopReason")
    action = STOP_ACTIONS.get(stop) if type(stop) is str else None
    if action is None:
        m.drift[f"message.assistant.stopReason={stop}"] += 1
        action = "respond"
    ts = m.ts(row, msg)
    model = msg.get("model")
    if model == MIRROR_MODEL or model == INJECTED_MODEL or action == "injected":  # OpenClaw's, no model's
        if not OPENCLAW_ASSISTANT_KEYS.issuperset(msg):
            m.check_keys(msg, OPENCLAW_ASSISTANT_KEYS, "message.assistant")
        rows.openclaw_message(m, row, msg, text, images, model == MIRROR_MODEL, rid, out, ts)
        return
    facts = None
    if not ASSISTANT_KEYS.issuperset(msg):
        m.check_keys(msg, MODEL_TURN_KEYS, "message.assistant")
        facts = rows.call_facts(msg)
    served = msg.get("responseModel")
    if served is not None and type(served) is not str:
        m.drift["message.assistant.responseModel:not_a_string"] += 1
        served = None
    if calls and action == "respond":
        action = "tool_call"
    if action == "respond" or action == "tool_call":
        m.last_error = None  # the session's failure class is how it ended, not an old error
    payload = {"action": action, "reasoning_summary": thinking or None, "tool": None, "args": None}
    llm = llm_block(m, msg, text, model, served)
    if calls:
        facts = fields.call_blocks(m, rid, calls, facts)
    if facts:  # this call's own facts: in its params, not in the config hash
        llm["params"] = {**llm["params"], **facts}
    act = m.event(out, rid, "worker_action", "worker", payload, m.parent(row), ts, llm)
    for i, call in enumerate(calls):
        cid, name, args = call_id(call, rid, i), call.get("name"), call.get("arguments")
        name = name if type(name) is str else fields.tool_name(m, name, i)
        args = args if type(args) is dict else tool_args(args)
        if not i:
            payload["tool"], payload["args"] = name, args
        m.tools.add(name)
        eid = m.event(out, rid, "worker_tool_call", "worker", {"call_id": cid, "tool": name, "args": args},
                      act, ts)
        m.calls[cid] = (eid, name)
    if text and (action == "respond" or action == "truncated"):
        m.event(out, rid, "worker_output", "worker",
                {"result": text, "status": "done" if action == "respond" else "partial"}, act, ts)
    elif action == "error" or action == "aborted":
        message = msg.get("errorMessage")
        message = message if type(message) is str else action
        kind = classify_llm_error(message, facts.get("error") if facts else None) if action == "error" \
            else "aborted"
        m.last_error = kind
        m.event(out, rid, "episode_error", "worker", {"kind": kind, "message": message, "recoverable": True},
                act, ts)


def tool_result(m: SessionMapper, row: dict[str, Any], msg: dict[str, Any], rid: str,
                out: list[dict[str, Any]]) -> None:
    """A tool result: ``worker_tool_result`` under its call (OpenClaw's own facts beside it)."""
    facts = None
    if not TOOL_RESULT_KEYS.issuperset(msg):
        m.check_keys(msg, TOOL_RESULT_TURN_KEYS, "message.toolResult")
        facts = rows.message_facts(msg)
    text, _, _, images, other = split_content(msg.get("content"), m.drift, "message.toolResult", m.wrong)
    cid, name = msg.get("toolCallId"), msg.get("toolName")
    name = name if type(name) is str else None
    if type(cid) is not str or not cid:
        m.drift["message.toolResult.toolCallId:missing"] += 1
        cid = f"missing:{rid}"
    pair = m.calls.get(cid)
    if pair is None:
        m.counts["orphan_tool_results"] += 1
        parent = m.parent(row)
    else:
        parent = pair[0]
        name = name or pair[1]
    is_error = msg.get("isError")
    if is_error is not True and is_error is not False and is_error is not None:
        m.wrong("message.toolResult.isError", "not_a_boolean", f"{is_error!r:.80} is no boolean: read as false")
    is_error = is_error is True
    output: Any = text
    if images or other:
        output = {"text": text, "images": list(images), "other": list(other)}
    payload: dict[str, Any] = {"call_id": cid, "ok": not is_error, "output": output}
    details = msg.get("details")
    if type(details) is dict:
        ms = details.get("durationMs")
        if (type(ms) is int or type(ms) is float) and ms >= 0:
            payload["latency_ms"] = float(ms)
    if is_error:
        payload["error"] = {"kind": classify_tool_error(text, details).value, "message": text[:2000]}
        if name:
            m.failed[name] = cid
    elif name and m.failed and name in m.failed and m.failed[name] != cid:
        payload["retry_of"] = m.failed.pop(name)
    ts = m.ts(row, msg)
    eid = m.event(out, rid, "worker_tool_result", "worker", payload, parent, ts)
    if facts:  # OpenClaw's own facts: beside the result (its payload has no place for them)
        m.event(out, rid, "env_observation", "env", {"observation": facts, "source": "openclaw.tool_result"},
                eid, ts)
        m.last_event = eid  # the row's children continue the result, not the facts
