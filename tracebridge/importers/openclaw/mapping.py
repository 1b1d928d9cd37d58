"""OpenClaw session rows → schema-v2 events (pure, one ``SessionMapper`` per session).

``SessionMapper.feed(row, lineno)`` maps one parsed transcript row to one or more event dicts
and keeps the little state a session needs: source row id → event id (for the id/parentId
chain), tool-call id → event id (to pair results with calls), the current model and thinking
level, the step counter and running totals. Rows that cannot be mapped raise ``RowError`` (the
caller quarantines them). Unknown row types, roles, fields and content blocks are mapped
generically and counted as drift. The mapping is documented in docs/openclaw-mapping.md; the
rarer row types live in ``rows.py``, the key sets it checks in ``keys.py``.

Event ids are derived from source ids: ``<run_id>:<row id>`` for a row's first event and
``<run_id>:<row id>.<k>`` for its k-th further event, so re-importing a file gives the same ids
(and bytes). This is the import's hot path: it avoids pydantic and keeps per-row work small.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from tracebridge.importers.openclaw import fields, rows
from tracebridge.importers.openclaw.content import split_content, tool_args, usage_of
from tracebridge.importers.openclaw.keys import (
    ASSISTANT_KEYS,
    DIGITS_TO_0,
    INJECTED_MODEL,
    ISO_SHAPE,
    MESSAGE_ROW_KEYS,
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
from tracebridge.importers.openclaw.rows import RowError  # raised here, caught by the importer
from tracebridge.importers.openclaw.text import (
    classify_llm_error,
    classify_tool_error,
    split_user_text,
    to_timestamp,
)
from tracebridge.schema.canonical import sha256_json

EPOCH = "1970-01-01T00:00:00.000Z"
EMPTY_PROMPT_HASH = sha256_json("")
_MISSING = object()


class SessionMapper:
    """Maps the rows of one OpenClaw session to the events of one run.

    Args:
        run_id: the run's id (derived from the session id).
    """

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self.prefix = run_id + ":"
        self.step = 0
        self.turns = 0
        self.events = 0
        self.root: str | None = None
        self.last_event: str | None = None
        self.last_ts = ""
        self.first_ts: str | None = None
        self.lineno = 0  # the line being mapped
        self.notes: list[tuple[int, str, Any, str]] = []  # (line, field, value, kind): see ImportReport.noted
        self.anchor: dict[str, str] = {}
        self.calls: dict[str, tuple[str, str]] = {}
        self.failed: dict[str, str] = {}
        self.header: dict[str, Any] | None = None
        self.session_name: str | None = None
        self.leaf: str | None = None  # the last entry's id: the writer's leaf (a header is no entry)
        self.provider: str | None = None
        self.model: str | None = None
        self.api: str | None = None
        self.thinking: str | None = None
        self.first_model: dict[str, Any] | None = None
        self.used_model: str | None = None  # ``provider/model`` of the last model turn (a model_change's "from")
        self.goal: str | None = None
        self.kind: str | None = None
        self.channel: str | None = None
        self.tokens = 0
        self.cost = 0.0
        self.last_error: str | None = None
        self.tools: set[str] = set()
        self.drift: Counter[str] = Counter()
        self.counts: Counter[str] = Counter()
        self.row_types: dict[str, int] = {}
        self._params: dict[tuple[Any, ...], tuple[dict[str, Any], str, str]] = {}

    def ts(self, row: dict[str, Any], msg: dict[str, Any] | None = None) -> str:
        """The row's timestamp (row ISO time, else the message's epoch ms, else the previous one)."""
        ts = row.get("timestamp")
        if type(ts) is not str or not ts.isascii() or ts.encode().translate(DIGITS_TO_0) != ISO_SHAPE:
            ts = self._slow_ts(row, msg)
        elif msg is not None and (mt := msg.get("timestamp")) is not None and type(mt) is not int \
                and type(mt) is not float and to_timestamp(mt) is None:
            self.wrong("message.timestamp", "invalid", f"{mt!r:.80} is no time (the row's timestamp is used)")
        if ts >= self.last_ts:
            self.last_ts = ts
        else:
            self.counts["timestamps_out_of_order"] += 1
        return ts

    def _slow_ts(self, row: dict[str, Any], msg: dict[str, Any] | None) -> str:
        ts = to_timestamp(row.get("timestamp"))
        if ts is None and msg is not None:
            ts = to_timestamp(msg.get("timestamp"))
        if ts is None:
            self.drift["timestamp:missing_or_invalid"] += 1
            ts = self.last_ts or EPOCH
        return ts

    def parent(self, row: dict[str, Any]) -> str | None:
        """Event id of the row's parent (lineage repaired to the previous event if unknown)."""
        pid = row.get("parentId", _MISSING)
        if pid is None:
            if self.leaf is not None:  # a new root after other entries (the writer's resetLeaf)
                self.counts["branches"] += 1
            return self.root
        anchor = self.anchor.get(pid) if type(pid) is str else None
        if anchor is not None:
            if pid != self.leaf:  # continues an earlier entry, not the latest: a new branch
                self.counts["branches"] += 1
            return anchor
        if pid is _MISSING:
            self.counts["rows_without_parentId"] += 1
        else:
            self.counts["lineage_repaired"] += 1
            self.notes.append((self.lineno, "parentId", pid, "itself" if pid == row.get("id") else "unknown"))
        return self.last_event

    def event(self, out: list[dict[str, Any]], rid: str, etype: str, role: str, payload: dict[str, Any],
              parent: str | None, ts: str, llm: dict[str, Any] | None = None) -> str:
        """Append one event for row ``rid`` to ``out`` and return its id."""
        eid = f"{self.prefix}{rid}.{len(out)}" if out else self.prefix + rid
        if parent is None:
            ev: dict[str, Any] = {"run_id": self.run_id, "step": self.step, "event_id": eid, "event_type": etype,
                                  "timestamp": ts, "parent_event_id": None, "root": True, "role": role,
                                  "payload": payload}
            self.root = eid
            self.first_ts = ts
        else:
            ev = {"run_id": self.run_id, "step": self.step, "event_id": eid, "event_type": etype, "timestamp": ts,
                  "parent_event_id": parent, "role": role, "payload": payload}
        if llm is not None:
            ev["llm"] = llm
        out.append(ev)
        self.events += 1
        self.last_event = eid
        return eid

    def wrong(self, field: str, kind: str, why: str) -> None:
        """Count a value of the wrong type as drift ``<field>:<kind>`` and list it (``file:line: field: why``)."""
        self.drift[f"{field}:{kind}"] += 1
        self.notes.append((self.lineno, field, why, "drift"))

    def check_keys(self, obj: dict[str, Any], known: frozenset[str], where: str) -> None:
        """Count fields outside ``known`` as drift (``<where>.<field>``)."""
        if not known.issuperset(obj):
            for k in obj:
                if k not in known:
                    self.drift[f"{where}.{k}"] += 1

    def all_counts(self) -> Counter[str]:
        """Counts for the report: rows by type (``rows:<type>``) and mapping events."""
        out = Counter(self.counts)
        for k, v in self.row_types.items():
            out["rows:" + k] += v
        return out

    # ------------------------------------------------------------------ entry point

    def feed(self, row: Any, lineno: int) -> list[dict[str, Any]]:
        """Map one parsed row to its events.

        Raises:
            RowError: the row cannot be mapped; quarantine it with the reason.
        """
        self.lineno = lineno
        if type(row) is not dict:
            raise RowError("<line>", f"row is a JSON {'null' if row is None else type(row).__name__}, not an object")
        rtype = row.get("type")
        if rtype is None and "role" in row:
            row = rows.legacy_message(self, row)
            rtype = "message"
        if type(rtype) is not str:
            raise RowError("type", "missing or not a string")
        rt = self.row_types
        rt[rtype] = rt.get(rtype, 0) + 1
        if rtype == "session":
            return rows.session_header(self, row, lineno)
        rid = row.get("id")
        if type(rid) is not str or not rid or rid in self.anchor:
            rid = fields.row_id(self, rid, lineno)
        out: list[dict[str, Any]] = []
        if rtype == "message":
            if not MESSAGE_ROW_KEYS.issuperset(row):
                self.check_keys(row, MESSAGE_ROW_KEYS, "message")
            msg = row.get("message")
            if type(msg) is not dict:
                raise RowError("message", "missing or not an object")
            role = msg.get("role")
            if role == "assistant":
                self._assistant(row, msg, rid, out)
            elif role == "toolResult":
                self._tool_result(row, msg, rid, out)
            elif role == "user":
                self._user(row, msg, rid, out)
            elif type(role) is str:
                rows.other_message(self, row, msg, role, rid, out)
            else:
                raise RowError("message.role", "missing or not a string")
        else:
            rows.handle(self, rtype, row, rid, out)
            if rtype == "leaf":  # it set its own anchor and the leaf
                return out
        self.anchor[rid] = self.last_event  # type: ignore[assignment]
        if "appendMode" in row and row["appendMode"] == "side":  # off the visible path: the leaf stays
            if row.get("parentId") == self.leaf:
                self.counts["branches"] += 1
        else:
            self.leaf = rid
        return out

    # ------------------------------------------------------------------ messages

    def _user(self, row: dict[str, Any], msg: dict[str, Any], rid: str, out: list[dict[str, Any]]) -> None:
        if not USER_KEYS.issuperset(msg):
            if msg.get("excludeFromContext") is True:  # never shown to the model: no turn, no goal
                rows.context_free_message(self, row, msg, rid, out)
                return
            self.check_keys(msg, USER_TURN_KEYS, "message.user")
            obs: dict[str, Any] = rows.message_facts(msg)
        else:
            obs = {}
        text, _, _, images, other = split_content(msg.get("content"), self.drift, "message.user", self.wrong)
        ut = split_user_text(text) if text else None
        if ut is not None and ut.channel:
            obs["channel"] = ut.channel
            self.channel = self.channel or ut.channel.get("channel")
        if ut is not None and ut.system_events:
            obs["system_events"] = ut.system_events
        if images:
            obs["images"] = images
        if "provenance" in msg:
            obs["provenance"] = msg["provenance"]
        if other:
            obs["other_content"] = other
        if self.turns:
            self.step += 1
        self.turns += 1
        self.failed.clear()
        parent, ts = self.parent(row), self.ts(row, msg)
        text = ut.text if ut is not None else ""
        if not text and not images:
            self.counts["system_event_turns"] += 1
            if self.kind is None:
                self.kind = "cron" if any(e["kind"] == "cron" for e in obs.get("system_events", ())) else "system"
            self.event(out, rid, "env_observation", "env", {"observation": obs, "source": "openclaw.system_event"},
                       parent, ts)
            return
        if not self.goal:  # the first user words: a photo without a caption has none, the next message's are
            first, self.goal = self.goal is None, text
            if first and self.kind is None:
                self.kind = ("heartbeat" if text.startswith("Read HEARTBEAT.md")
                             else "telegram" if self.channel == "telegram" else "chat")
        self.event(out, rid, "planner_input", "planner", {"goal": text, "observation": obs or None}, parent, ts)

    def _llm(self, msg: dict[str, Any], response: str, model: Any, served: Any = None) -> dict[str, Any]:
        """The ``llm`` block of a model turn; ``served`` is the message's ``responseModel`` (the model
        that answered, when a router such as OpenRouter's ``auto`` picked one), kept in ``params``."""
        provider, api = msg.get("provider"), msg.get("api")
        provider = provider if type(provider) is str else self.provider
        model = model if type(model) is str else self.model
        api = api if type(api) is str else self.api
        key = (provider, model, api, self.thinking, served)
        cached = self._params.get(key)
        if cached is None:
            params = {"provider": provider, "api": api, "thinking_level": self.thinking}
            if type(served) is str and served != model:
                params["response_model"] = served
            name = f"{provider}/{model}" if provider and model else (model or "unknown")
            cached = (params, sha256_json({"model": name, "params": params}), name)
            self._params[key] = cached
            if self.first_model is None and model:
                self.first_model = {"model": name, "params": params}
        self.used_model = cached[2]
        inp, outp, usd = usage_of(msg.get("usage"), self.wrong)
        self.tokens += inp + outp
        self.cost += usd
        return {"model": cached[2], "rendered_prompt": "", "prompt_hash": EMPTY_PROMPT_HASH,
                "config_hash": cached[1], "params": cached[0], "response": response,
                "usage": {"input_tokens": inp, "output_tokens": outp, "cost_usd": usd, "latency_ms": 0.0}}

    def _assistant(self, row: dict[str, Any], msg: dict[str, Any], rid: str, out: list[dict[str, Any]]) -> None:
        text, thinking, calls, images, _ = split_content(msg.get("content"), self.drift, "message.assistant",
                                                             self.wrong)
        stop = msg.get("stopReason")
        action = STOP_ACTIONS.get(stop) if type(stop) is str else None
        if action is None:
            self.drift[f"message.assistant.stopReason={stop}"] += 1
            action = "respond"
        ts = self.ts(row, msg)
        model = msg.get("model")
        if model == MIRROR_MODEL or model == INJECTED_MODEL or action == "injected":  # OpenClaw's, no model's
            if not OPENCLAW_ASSISTANT_KEYS.issuperset(msg):
                self.check_keys(msg, OPENCLAW_ASSISTANT_KEYS, "message.assistant")
            rows.openclaw_message(self, row, msg, text, images, model == MIRROR_MODEL, rid, out, ts)
            return
        facts = None
        if not ASSISTANT_KEYS.issuperset(msg):
            self.check_keys(msg, MODEL_TURN_KEYS, "message.assistant")
            facts = rows.call_facts(msg)
        served = msg.get("responseModel")
        if served is not None and type(served) is not str:
            self.drift["message.assistant.responseModel:not_a_string"] += 1
            served = None
        if calls and action == "respond":
            action = "tool_call"
        if action == "respond" or action == "tool_call":
            self.last_error = None  # the session's failure class is how it ended, not an old error
        payload = {"action": action, "reasoning_summary": thinking or None, "tool": None, "args": None}
        llm = self._llm(msg, text, model, served)
        if calls:
            facts = fields.call_blocks(self, rid, calls, facts)
        if facts:  # this call's own facts: in its params, not in the config hash
            llm["params"] = {**llm["params"], **facts}
        act = self.event(out, rid, "worker_action", "worker", payload, self.parent(row), ts, llm)
        for i, call in enumerate(calls):
            cid, name, args = call_id(call, rid, i), call.get("name"), call.get("arguments")
            name = name if type(name) is str else fields.tool_name(self, name, i)
            args = args if type(args) is dict else tool_args(args)
            if not i:
                payload["tool"], payload["args"] = name, args
            self.tools.add(name)
            eid = self.event(out, rid, "worker_tool_call", "worker", {"call_id": cid, "tool": name, "args": args},
                             act, ts)
            self.calls[cid] = (eid, name)
        if text and (action == "respond" or action == "truncated"):
            self.event(out, rid, "worker_output", "worker",
                       {"result": text, "status": "done" if action == "respond" else "partial"}, act, ts)
        elif action == "error" or action == "aborted":
            message = msg.get("errorMessage")
            message = message if type(message) is str else action
            kind = classify_llm_error(message, facts.get("error") if facts else None) if action == "error" \
                else "aborted"
            self.last_error = kind
            self.event(out, rid, "episode_error", "worker", {"kind": kind, "message": message, "recoverable": True},
                       act, ts)

    def _tool_result(self, row: dict[str, Any], msg: dict[str, Any], rid: str, out: list[dict[str, Any]]) -> None:
        facts = None
        if not TOOL_RESULT_KEYS.issuperset(msg):
            self.check_keys(msg, TOOL_RESULT_TURN_KEYS, "message.toolResult")
            facts = rows.message_facts(msg)
        text, _, _, images, other = split_content(msg.get("content"), self.drift, "message.toolResult", self.wrong)
        cid, name = msg.get("toolCallId"), msg.get("toolName")
        name = name if type(name) is str else None
        if type(cid) is not str or not cid:
            self.drift["message.toolResult.toolCallId:missing"] += 1
            cid = f"missing:{rid}"
        pair = self.calls.get(cid)
        if pair is None:
            self.counts["orphan_tool_results"] += 1
            parent = self.parent(row)
        else:
            parent = pair[0]
            name = name or pair[1]
        is_error = msg.get("isError")
        if is_error is not True and is_error is not False and is_error is not None:
            self.wrong("message.toolResult.isError", "not_a_boolean", f"{is_error!r:.80} is no boolean: read as false")
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
                self.failed[name] = cid
        elif name and self.failed and name in self.failed and self.failed[name] != cid:
            payload["retry_of"] = self.failed.pop(name)
        ts = self.ts(row, msg)
        eid = self.event(out, rid, "worker_tool_result", "worker", payload, parent, ts)
        if facts:  # OpenClaw's own facts: beside the result (its payload has no place for them)
            self.event(out, rid, "env_observation", "env", {"observation": facts, "source": "openclaw.tool_result"},
                       eid, ts)
            self.last_event = eid  # the row's children continue the result, not the facts
