"""The rarer OpenClaw row types (header, model and thinking changes, custom rows, compaction, branch summaries,
labels, session names, custom messages, resets, leaf controls, the coding agent's own message roles, OpenClaw's
own assistant and context-free messages, unknown types and roles, legacy rows) for ``SessionMapper`` (pure).

The row shapes are those OpenClaw's transcript writer, pi-coding-agent's ``SessionManager`` (badlogic/pi-mono
``packages/coding-agent/src/core/session-manager.ts`` and ``messages.ts``), appends, and what OpenClaw's own session
manager added to them (openclaw/openclaw ``src/agents/sessions/session-manager-*.ts``: ``reset``, ``leaf``, ``appendMode``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tracebridge.importers.openclaw.content import image_placeholder, split_content

if TYPE_CHECKING:
    from tracebridge.importers.openclaw.mapping import SessionMapper

ROW_KEYS = frozenset({"type", "id", "parentId", "timestamp"})
# Every entry of OpenClaw's writer may say ``appendMode: "side"``: appended off the visible path.
ENTRY_KEYS = ROW_KEYS | {"appendMode"}
TYPE_KEYS: dict[str, frozenset[str]] = {
    "session": frozenset({"type", "id", "timestamp", "version", "cwd", "parentSession"}),
    "model_change": ENTRY_KEYS | {"provider", "modelId"},
    "thinking_level_change": ENTRY_KEYS | {"thinkingLevel"},
    "custom": ENTRY_KEYS | {"customType", "data"},
    "custom_message": ENTRY_KEYS | {"customType", "content", "display", "details", "excludeFromContext"},
    "compaction": ENTRY_KEYS | {"summary", "firstKeptEntryId", "tokensBefore", "tokensAfter", "details", "fromHook",
                                "__openclaw"},
    "branch_summary": ENTRY_KEYS | {"fromId", "summary", "details", "fromHook"},
    "label": ENTRY_KEYS | {"targetId", "label"},
    "session_info": ENTRY_KEYS | {"name"},
    "reset": ENTRY_KEYS | {"reason", "firstKeptEntryId"},
    "leaf": ENTRY_KEYS | {"targetId", "appendParentId"},
}
# Rows kept as an observation of their own fields: type → (source, fields, count).
OBSERVED: dict[str, tuple[str, tuple[str, ...], str]] = {
    "compaction": ("openclaw.compaction", ("summary", "firstKeptEntryId", "tokensBefore", "tokensAfter", "details",
                                           "fromHook", "__openclaw"), "compactions"),
    # OpenClaw's context boundary (/new, /reset, idle and daily resets): the model's context starts
    # again after it, from ``firstKeptEntryId`` when given.
    "reset": ("openclaw.reset", ("reason", "firstKeptEntryId"), "resets"),
    "branch_summary": ("openclaw.branch_summary", ("fromId", "summary", "details", "fromHook"), "branch_summaries"),
    "label": ("openclaw.label", ("targetId", "label"), "labels"),
    "session_info": ("openclaw.session_info", ("name",), "session_names"),
}
# Message roles of the coding agent besides user/assistant/toolResult (``messages.ts``): extension
# messages (``custom``, called ``hookMessage`` before transcript v3) and ``!`` shell runs.
CUSTOM_ROLES = frozenset({"custom", "hookMessage"})
CUSTOM_MESSAGE_KEYS = frozenset({"role", "customType", "content", "display", "details", "timestamp",
                                 "excludeFromContext", "idempotencyKey"})
# OpenClaw's own extension messages, which its convertToLlm gives the model in their own way
# (openclaw/openclaw packages/agent-core/src/harness/messages.ts, src/agents/operator-messages.ts,
# src/agents/internal-runtime-context.ts): a system update (``openclaw.system-update``, details
# ``{kind: prompt-update | runtime-context, turnScoped}``: an operator message, its content as it
# is) and a runtime-context carrier (``openclaw.runtime-context``: its text labelled). It writes
# them with an ``idempotencyKey``. Runtime context is turn-scoped: upstream drops it from the
# context of later user turns (``stripHistoricalRuntimeContextCustomMessages``).
SYSTEM_UPDATE_TYPE = "openclaw.system-update"
RUNTIME_CONTEXT_TYPE = "openclaw.runtime-context"
SYSTEM_UPDATE_KINDS = frozenset({"prompt-update", "runtime-context"})
# What OpenClaw's own assistant messages carry beside their text: delivery facts, the run a stopped
# partial belongs to, and ``excludeFromContext`` / ``__openclaw`` for a context-free command's answer.
OPENCLAW_MESSAGE_FIELDS = ("openclawDeliveryMirror", "idempotencyKey", "openclawAbort", "excludeFromContext",
                           "__openclaw", "openclawDelivery", "responseId", "diagnostics")
CONTEXT_FREE_USER_KEYS = frozenset({"role", "content", "timestamp", "provenance", "excludeFromContext", "__openclaw",
                                    "idempotencyKey"})
# What current OpenClaw adds to ordinary messages (openclaw/openclaw): ``__openclaw`` (its own
# identity and media facts: ``id``, ``seq``, ``media``, ``mirrorIdentity``), ``openclawDelivery``
# (what a channel was sent: ``mediaUrls``) and ``openclawDisplayContent`` (what the chat UI shows
# instead of ``content``, with attachments). ``content`` stays what the model saw or wrote, so
# training uses it; these are kept beside it: name in the message → key in the trace.
MESSAGE_FACTS = {"__openclaw": "openclaw", "openclawDelivery": "delivery", "openclawDisplayContent": "display_content"}
# A model's message may also carry the provider's ``responseId``, ``diagnostics`` (redacted
# provider/runtime notes on failures and recoveries; src/llm/types.ts) and the ``turnId`` of the
# run turn it belongs to (packages/llm-core ``AssistantMessage``).
CALL_FACTS = {"responseId": "response_id", "turnId": "turn_id", "diagnostics": "diagnostics", **MESSAGE_FACTS}
# What current OpenClaw records of a failed call beside ``errorMessage`` (packages/llm-core
# ``AssistantMessage``): the provider's HTTP status, error code and type, its Retry-After and the
# response body. Kept as ``llm.params.error`` (the body cut to ``ERROR_BODY_CHARS``) and read by
# ``text.classify_llm_error``: a 429 whose message does not say so is still a rate limit.
ERROR_FACTS = {"errorStatus": "status", "errorCode": "code", "errorType": "type",
               "errorRetryAfterMs": "retry_after_ms", "errorBody": "body"}
ERROR_BODY_CHARS = 2000
# Fields of a model's message dropped on purpose: ``providerReplay`` is the provider's opaque
# state for replaying the turn (a server-side compaction checkpoint), like ``thinkingSignature``.
DROPPED_CALL_FIELDS = ("providerReplay",)
BASH_FIELDS = ("command", "output", "exitCode", "cancelled", "truncated", "fullOutputPath", "excludeFromContext")
_MISSING = object()


class RowError(ValueError):
    """A row that cannot be mapped: ``field`` names what is wrong."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def _error(field: str, reason: str) -> Exception:
    return RowError(field, reason)


def _display(value: Any) -> Any:
    """Display content with images as placeholders (their data is never copied into traces)."""
    if type(value) is not list:
        return value
    return [image_placeholder(b) if type(b) is dict and b.get("type") == "image" and "data" in b else b
            for b in value]


def message_facts(msg: dict[str, Any], facts: dict[str, str] = MESSAGE_FACTS) -> dict[str, Any]:
    """OpenClaw's own facts on a message (``MESSAGE_FACTS`` or ``CALL_FACTS``), under trace names."""
    out = {key: msg[name] for name, key in facts.items() if name in msg}
    if "display_content" in out:
        out["display_content"] = _display(out["display_content"])
    return out


def call_facts(msg: dict[str, Any]) -> dict[str, Any]:
    """A model message's facts for its ``llm.params`` (a failed call's under ``error``)."""
    out = message_facts(msg, CALL_FACTS)
    error = {key: msg[name] for name, key in ERROR_FACTS.items() if name in msg}
    if error:
        if type(error.get("body")) is str:
            error["body"] = error["body"][:ERROR_BODY_CHARS]
        out["error"] = error
    return out


def legacy_message(m: SessionMapper, row: dict[str, Any]) -> dict[str, Any]:
    """Wrap a pre-v3 row (the message itself, no ``type``) as a v3 message row."""
    m.drift["row_type=<legacy message>"] += 1
    out = {"type": "message", "id": row.get("id"), "timestamp": row.get("timestamp"), "message": row}
    if "parentId" in row:
        out["parentId"] = row["parentId"]
    return out


def session_header(m: SessionMapper, row: dict[str, Any], lineno: int) -> list[dict[str, Any]]:
    """The header becomes the root; a late or second header an ordinary observation (drift)."""
    m.check_keys(row, TYPE_KEYS["session"], "session")
    if type(row.get("id")) is not str:  # the run id came from the file name (``read_session_id``)
        m.wrong("session.id", "not_a_string", f"{row.get('id')!r:.80} is no session id: the run is named after the "
                "file (the header's id is kept in its observation)")
    out: list[dict[str, Any]] = []
    obs = {k: v for k, v in row.items() if k != "type"}
    if row.get("version") != 3:
        m.drift[f"session.version={row.get('version')}"] += 1
    if m.header is None and m.events == 0:
        m.header = row
        m.event(out, "session", "env_observation", "env", {"observation": obs, "source": "openclaw.session"},
                None, m.ts(row))
        return out
    m.drift["session:second_header" if m.header is not None else "session:header_not_first"] += 1
    if m.header is None:
        m.header = row
    m.event(out, f"session~L{lineno}", "env_observation", "env", {"observation": obs, "source": "openclaw.session"},
            m.last_event, m.ts(row))
    return out


def other_message(m: SessionMapper, row: dict[str, Any], msg: dict[str, Any], role: str, rid: str,
                  out: list[dict[str, Any]]) -> None:
    """A message that is neither user, assistant nor tool result: an extension message (role
    ``custom``, as a ``custom_message`` row), a ``!`` shell run (``bashExecution``: command, output,
    exit code), or a role this importer does not know (kept whole, drift)."""
    if role in CUSTOM_ROLES:
        _custom_message(m, row, msg, rid, out)
        return
    if role == "bashExecution":
        m.counts["bash_executions"] += 1
        obs = {k: msg[k] for k in BASH_FIELDS if k in msg}
        m.event(out, rid, "env_observation", "env", {"observation": obs, "source": "openclaw.bash_execution"},
                m.parent(row), m.ts(row, msg))
        return
    m.drift[f"message.role={role}"] += 1
    text = split_content(msg.get("content"), m.drift, f"message.{role}", m.wrong)[0]
    obs = {k: v for k, v in msg.items() if k != "content"}
    obs["content"] = text
    m.event(out, rid, "env_observation", "env", {"observation": obs, "source": f"openclaw.message:{role}"},
            m.parent(row), m.ts(row, msg))


def context_free_message(m: SessionMapper, row: dict[str, Any], msg: dict[str, Any], rid: str,
                         out: list[dict[str, Any]]) -> None:
    """A user message OpenClaw kept out of the model's context (``excludeFromContext: true``; a
    context-free command such as ``/status`` also sets ``__openclaw.contextFreeCommand``): an
    observation, not a turn, so it is neither the goal nor part of a training prompt."""
    m.check_keys(msg, CONTEXT_FREE_USER_KEYS, "message.user")
    m.counts["context_free_messages"] += 1
    text, _, _, images, _ = split_content(msg.get("content"), m.drift, "message.user", m.wrong)
    obs: dict[str, Any] = {"text": text}
    if images:
        obs["images"] = list(images)
    for k in ("excludeFromContext", "__openclaw", "provenance"):
        if k in msg:
            obs[k] = msg[k]
    m.event(out, rid, "env_observation", "env", {"observation": obs, "source": "openclaw.context_free_message"},
            m.parent(row), m.ts(row, msg))


def openclaw_message(m: SessionMapper, row: dict[str, Any], msg: dict[str, Any], text: str, images: Any,
                     mirror: bool, rid: str, out: list[dict[str, Any]], ts: str) -> None:
    """An assistant message OpenClaw wrote itself, not a model: a gateway-injected one (model
    ``gateway-injected``, or stopReason ``injected`` from older gateways: a note, a command's answer,
    the partial of a stopped run) or a delivery mirror (model ``delivery-mirror``: a copy of a reply
    sent through a tool or channel). Kept as an observation, so it is no model decision, its zero
    usage no model turn and its model not the session's. A stopped run's partial (stopReason
    ``aborted``) makes ``aborted`` the session's failure class, as a model turn's abort does."""
    m.counts["delivery_mirrors" if mirror else "injected_messages"] += 1
    obs: dict[str, Any] = {"text": text}
    if images:
        obs["images"] = list(images)
    for k in OPENCLAW_MESSAGE_FIELDS:
        if k in msg:
            obs[k] = msg[k]
    if "openclawDisplayContent" in msg:
        obs["openclawDisplayContent"] = _display(msg["openclawDisplayContent"])
    if msg.get("stopReason") == "aborted":
        m.last_error = "aborted"
    m.event(out, rid, "env_observation", "env",
            {"observation": obs, "source": "openclaw.delivery_mirror" if mirror else "openclaw.injected"},
            m.parent(row), ts)


def context_kind(ctype: str, details: Any) -> tuple[str | None, bool]:
    """How upstream's ``convertToLlm`` gives an extension message of type ``ctype`` to the model, and
    whether it is turn-scoped (in the context of its own user turn only).

    The kind is ``operator`` for a system update whose details say ``kind`` and a boolean
    ``turnScoped`` (a ``user`` message with its content as it is), ``runtime`` for a runtime-context
    carrier (``openclaw.runtime-context`` with details ``source: openclaw-runtime-context``, or no
    source and ``runtimeContextCarrier: true``; or a system update of kind ``runtime-context``
    without ``turnScoped``): its text labelled as runtime context; None for any other message (its
    content as it is). Every ``openclaw.runtime-context`` message and every system update of kind
    ``runtime-context`` is turn-scoped, carrier or not (upstream's ``isOpenClawRuntimeContextCustomMessage``).
    """
    d = details if type(details) is dict else {}
    if ctype == SYSTEM_UPDATE_TYPE and d.get("kind") in SYSTEM_UPDATE_KINDS:
        scoped = d["kind"] == "runtime-context"
        if type(d.get("turnScoped")) is bool:
            return "operator", scoped
        return ("runtime" if scoped else None), scoped
    if ctype == RUNTIME_CONTEXT_TYPE:
        carrier = d.get("runtimeContextCarrier")
        if "source" in d:
            carrier = d["source"] == "openclaw-runtime-context" and carrier is not False
        return ("runtime" if carrier is True else None), True
    return None, False


def _custom_message(m: SessionMapper, row: dict[str, Any], src: dict[str, Any], rid: str,
                    out: list[dict[str, Any]]) -> None:
    """An extension's message (a ``custom_message`` row, or a message of role ``custom``): its
    text, images (placeholders), ``display``, ``details``, ``idempotencyKey`` and
    ``excludeFromContext`` (OpenClaw's receipts the model never reads, such as
    ``openclaw.nested-tool.v1``, set it); for OpenClaw's system updates and runtime context also how
    the model was given it (``context``: ``operator`` or ``runtime``, counted
    ``<context>_context_messages``) and ``turn_scoped`` (``context_kind``)."""
    if src is not row:
        m.check_keys(src, CUSTOM_MESSAGE_KEYS, "message.custom")
    ctype = src.get("customType") if isinstance(src.get("customType"), str) else "unknown"
    text, _, _, images, _ = split_content(src.get("content"), m.drift, "custom_message", m.wrong)
    obs: dict[str, Any] = {"content": text, "display": src.get("display"), "details": src.get("details")}
    if images:
        obs["images"] = list(images)
    for k in ("excludeFromContext", "idempotencyKey"):
        if k in src:
            obs[k] = src[k]
    kind, scoped = context_kind(ctype, src.get("details"))
    if kind is not None:
        obs["context"] = kind
        m.counts[f"{kind}_context_messages"] += 1
    if scoped:
        obs["turn_scoped"] = True
    m.event(out, rid, "env_observation", "env", {"observation": obs, "source": f"openclaw.custom_message:{ctype}"},
            m.parent(row), m.ts(row, src if src is not row else None))


def handle(m: SessionMapper, rtype: str, row: dict[str, Any], rid: str, out: list[dict[str, Any]]) -> None:
    """Map a non-message row by its type."""
    known = TYPE_KEYS.get(rtype)
    if known is None:
        m.drift[f"row_type={rtype}"] += 1
        obs = {k: v for k, v in row.items() if k not in ROW_KEYS}
        m.event(out, rid, "env_observation", "env", {"observation": obs, "source": f"openclaw.{rtype}"},
                m.parent(row), m.ts(row))
        return
    m.check_keys(row, known, rtype)
    if rtype == "model_change":
        model_change(m, row, rid, out)
    elif rtype == "thinking_level_change":
        level = row.get("thinkingLevel")
        if not isinstance(level, str):
            raise _error("thinkingLevel", "missing or not a string")
        before, m.thinking = m.thinking or "none", level
        _transition(m, row, rid, out, f"thinking:{before}", f"thinking:{level}", "thinking_level_change")
    elif rtype == "custom":
        custom(m, row, rid, out)
    elif rtype == "custom_message":
        _custom_message(m, row, row, rid, out)
    elif rtype == "leaf":
        leaf_control(m, row, rid, out)
    else:  # compaction, branch_summary, label, session_info, reset
        source, keep, count = OBSERVED[rtype]
        m.counts[count] += 1
        obs = {k: row[k] for k in keep if k in row}
        if rtype == "session_info" and isinstance(row.get("name"), str):
            m.session_name = row["name"]
        m.event(out, rid, "env_observation", "env", {"observation": obs, "source": source}, m.parent(row), m.ts(row))


def leaf_control(m: SessionMapper, row: dict[str, Any], rid: str, out: list[dict[str, Any]]) -> None:
    """A ``leaf`` row, OpenClaw's leaf control: the writer's visible leaf moves to ``targetId``
    (null: before the first entry) and its next append goes under ``appendParentId`` (default the
    target; ``appendMode: side`` for appends off the visible path). It is navigation, no content:
    an observation hanging off its target, as OpenClaw resolves it, and a row naming it as its
    parent continues the target. Moving the leaf elsewhere than the last entry counts a branch.

    OpenClaw ignores a control whose target, or ``appendParentId`` when given, is no entry before
    it (missing, or only written later): the visible path stays where it was. Such a control is
    kept as an observation off the previous entry and counted ``leaf_controls_ignored``; it moves
    no leaf and counts no branch (before, the leaf moved to it, and an unknown append parent was
    not looked at, so the entries of the path OpenClaw kept were exported as abandoned).

    Raises:
        RowError: ``targetId`` is neither a string nor null.
    """
    target = row.get("targetId")
    if target is not None and type(target) is not str:
        raise _error("targetId", "not a string or null")
    m.counts["leaf_controls"] += 1
    anchor = m.anchor.get(target) if target is not None else m.root
    append = row.get("appendParentId")
    obs = {k: row[k] for k in ("targetId", "appendParentId", "appendMode") if k in row}
    if (target is not None and anchor is None) or (append is not None and m.anchor.get(append) is None):
        m.counts["leaf_controls_ignored"] += 1
        m.event(out, rid, "env_observation", "env", {"observation": obs, "source": "openclaw.leaf"}, m.parent(row),
                m.ts(row))
        keep = m.anchor.get(m.leaf) if m.leaf is not None else m.root  # a row naming it continues the leaf
        m.anchor[rid] = keep or m.last_event  # type: ignore[assignment]
        return
    parent = anchor if anchor is not None else m.parent(row)  # a null target in a session without header
    m.event(out, rid, "env_observation", "env", {"observation": obs, "source": "openclaw.leaf"}, parent, m.ts(row))
    if target != m.leaf:
        m.counts["branches"] += 1
    m.anchor[rid] = anchor if anchor is not None else m.last_event  # type: ignore[assignment]
    m.leaf = target


def _transition(m: SessionMapper, row: dict[str, Any], rid: str, out: list[dict[str, Any]], frm: str, to: str,
                reason: str) -> None:
    m.event(out, rid, "orchestrator_transition", "orchestrator", {"from_state": frm, "to_state": to, "reason": reason},
            m.parent(row), m.ts(row))


def model_change(m: SessionMapper, row: dict[str, Any], rid: str, out: list[dict[str, Any]]) -> None:
    """A ``model_change`` row: switch the session's model, recorded as a transition into ``out``.

    Raises:
        RowError: ``modelId`` is missing or not a string.
    """
    model = row.get("modelId")
    if not isinstance(model, str) or not model:
        raise _error("modelId", "missing or not a string")
    provider = row.get("provider") if isinstance(row.get("provider"), str) else None
    # without an earlier change or snapshot, the model the turns so far named (before: "model:none")
    before = f"model:{m.provider}/{m.model}" if m.model else f"model:{m.used_model or 'none'}"
    m.provider, m.model = provider, model
    _transition(m, row, rid, out, before, f"model:{provider}/{model}", "model_change")


def custom(m: SessionMapper, row: dict[str, Any], rid: str, out: list[dict[str, Any]]) -> None:
    """``custom`` rows: model snapshots update the model; prompt errors become episode errors."""
    ctype = row.get("customType")
    if not isinstance(ctype, str):
        raise _error("customType", "missing or not a string")
    data = row.get("data")
    m.counts[f"custom:{ctype}"] += 1
    if ctype == "model-snapshot" and isinstance(data, dict):
        for attr, key in (("provider", "provider"), ("model", "modelId"), ("api", "modelApi")):
            if isinstance(data.get(key), str):
                setattr(m, attr, data[key])
    if ctype == "openclaw:prompt-error":
        err = (data.get("error") or data.get("message")) if isinstance(data, dict) else data
        m.last_error = "prompt_error"
        m.event(out, rid, "episode_error", "orchestrator",
                {"kind": "prompt_error", "message": str(err if err is not None else data)[:2000], "recoverable": True},
                m.parent(row), m.ts(row))
        return
    m.event(out, rid, "env_observation", "env", {"observation": data, "source": f"openclaw.custom:{ctype}"},
            m.parent(row), m.ts(row))
