"""OpenClaw session rows → schema-v2 events (pure, one ``SessionMapper`` per session).

``SessionMapper.feed(row, lineno)`` maps one parsed transcript row to one or more event dicts
and keeps the little state a session needs: source row id → event id (for the id/parentId
chain), tool-call id → event id (to pair results with calls), the current model and thinking
level, the step counter and running totals. Rows that cannot be mapped raise ``RowError`` (the
caller quarantines them). Unknown row types, roles, fields and content blocks are mapped
generically and counted as drift. The mapping is documented in docs/openclaw-mapping.md; the
message rows (user, assistant, tool result) are mapped in ``messages.py``, the rarer row types in
``rows.py``, the key sets it checks are in ``keys.py``.

Event ids are derived from source ids: ``<run_id>:<row id>`` for a row's first event and
``<run_id>:<row id>.<k>`` for its k-th further event, so re-importing a file gives the same ids
(and bytes). This is the import's hot path: it avoids pydantic and keeps per-row work small.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from tracebridge.importers.openclaw import fields, messages, rows
from tracebridge.importers.openclaw.keys import DIGITS_TO_0, ISO_SHAPE, MESSAGE_ROW_KEYS
from tracebridge.importers.openclaw.rows import RowError  # raised here, caught by the importer
from tracebridge.importers.openclaw.text import to_timestamp

EPOCH = "1970-01-01T00:00:00.000Z"
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
        self.params_cache: dict[tuple[Any, ...], tuple[dict[str, Any], str, str]] = {}

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
                messages.assistant(self, row, msg, rid, out)
            elif role == "toolResult":
                messages.tool_result(self, row, msg, rid, out)
            elif role == "user":
                messages.user(self, row, msg, rid, out)
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
