"""The rarer OpenClaw row types (header, model and thinking changes, custom rows, compaction,
custom messages, unknown types and roles, legacy rows) for ``SessionMapper`` (pure)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tracebridge.importers.openclaw.content import split_content

if TYPE_CHECKING:
    from tracebridge.importers.openclaw.mapping import SessionMapper

ROW_KEYS = frozenset({"type", "id", "parentId", "timestamp"})
TYPE_KEYS: dict[str, frozenset[str]] = {
    "session": frozenset({"type", "id", "timestamp", "version", "cwd"}),
    "model_change": ROW_KEYS | {"provider", "modelId"},
    "thinking_level_change": ROW_KEYS | {"thinkingLevel"},
    "custom": ROW_KEYS | {"customType", "data"},
    "custom_message": ROW_KEYS | {"customType", "content", "display", "details"},
    "compaction": ROW_KEYS | {"summary", "firstKeptEntryId", "tokensBefore", "details", "fromHook"},
}
COMPACTION_FIELDS = ("summary", "firstKeptEntryId", "tokensBefore", "details", "fromHook")
_MISSING = object()


def _error(field: str, reason: str) -> Exception:
    from tracebridge.importers.openclaw.mapping import RowError

    return RowError(field, reason)


def legacy_message(m: SessionMapper, row: dict[str, Any]) -> dict[str, Any]:
    """Wrap a pre-v3 row (the message itself, no ``type``) as a v3 message row."""
    m.drift["row_type=<legacy message>"] += 1
    out = {"type": "message", "id": row.get("id"), "timestamp": row.get("timestamp"), "message": row}
    if "parentId" in row:
        out["parentId"] = row["parentId"]
    return out


def fallback_row_id(m: SessionMapper, rid: Any, lineno: int) -> str:
    """A row id for rows without one (``L<line>``) or with a duplicate one (``<id>~L<line>``)."""
    if type(rid) is str and rid:
        m.drift["row:duplicate_id"] += 1
        return f"{rid}~L{lineno}"
    return f"L{lineno}"


def session_header(m: SessionMapper, row: dict[str, Any], lineno: int) -> list[dict[str, Any]]:
    """The header becomes the root; a late or second header an ordinary observation (drift)."""
    m.check_keys(row, TYPE_KEYS["session"], "session")
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
    """A message with a role this importer does not know: kept as an observation (drift)."""
    m.drift[f"message.role={role}"] += 1
    text = split_content(msg.get("content"), m.drift, f"message.{role}")[0]
    obs = {k: v for k, v in msg.items() if k != "content"}
    obs["content"] = text
    m.event(out, rid, "env_observation", "env", {"observation": obs, "source": f"openclaw.message:{role}"},
            m.parent(row), m.ts(row, msg))


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
        ctype = row.get("customType") if isinstance(row.get("customType"), str) else "unknown"
        text, _, _, images, _ = split_content(row.get("content"), m.drift, "custom_message")
        obs: dict[str, Any] = {"content": text, "display": row.get("display"), "details": row.get("details")}
        if images:
            obs["images"] = list(images)
        m.event(out, rid, "env_observation", "env", {"observation": obs, "source": f"openclaw.custom_message:{ctype}"},
                m.parent(row), m.ts(row))
    else:  # compaction
        m.counts["compactions"] += 1
        obs = {k: row[k] for k in COMPACTION_FIELDS if k in row}
        m.event(out, rid, "env_observation", "env", {"observation": obs, "source": "openclaw.compaction"},
                m.parent(row), m.ts(row))


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
    before = f"model:{m.provider}/{m.model}" if m.model else "model:none"
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
