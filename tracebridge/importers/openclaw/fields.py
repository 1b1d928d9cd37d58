"""Ids and names of OpenClaw rows and tool calls for ``SessionMapper`` (pure): a row's id (a number kept as
its text, a missing one ``L<line>``, a repeated one ``<id>~L<line>``), a tool call's name, and the toolCall
blocks' keys, ids and ``executionMode``s. A value of the wrong type is counted as drift and listed with its
line (``SessionMapper.wrong``), never replaced without a word.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tracebridge.importers.openclaw.keys import TOOL_CALL_KEYS, call_id

if TYPE_CHECKING:
    from tracebridge.importers.openclaw.mapping import SessionMapper


def _number(value: Any) -> bool:
    return type(value) is int or type(value) is float


def row_id(m: SessionMapper, rid: Any, lineno: int) -> str:
    """The id of a row whose ``id`` is no fresh non-empty string: a number as its text, ``L<line>`` for a
    row without one, ``<id>~L<line>`` for a duplicate (``ImportReport.noted``)."""
    if _number(rid):
        m.wrong("row.id", "number_as_text", f"{rid!r} is a number, not a string: kept as its text")
        rid = str(rid)
        if rid not in m.anchor:
            return rid
    elif rid is not None and type(rid) is not str:
        m.wrong("row.id", "not_a_string", f"{rid!r:.80} is no string: the row is imported as 'L{lineno}'")
    if type(rid) is str and rid:
        m.drift["row:duplicate_id"] += 1
        m.notes.append((lineno, "id", rid, "duplicate"))
        return f"{rid}~L{lineno}"
    return f"L{lineno}"


def tool_name(m: SessionMapper, name: Any, i: int) -> str:
    """The name of tool call ``i`` whose ``name`` is no string: a number as its text, else ``unknown``."""
    field = "message.assistant.content.toolCall.name"
    if _number(name):
        m.wrong(field, "number_as_text", f"toolCall {i}: {name!r} is a number, not a string: kept as its text")
        return str(name)
    m.wrong(field, "not_a_string", f"toolCall {i}: {name!r:.80} is no tool name: the call is named 'unknown'")
    return "unknown"


def call_blocks(m: SessionMapper, rid: str, calls: Any, facts: dict[str, Any] | None) -> dict[str, Any] | None:
    """Check the toolCall blocks' keys (unknown ones are drift) and ids (one that is no non-empty string is
    drift: the call gets ``<row id>#<index>``), and add their ``executionMode``s to the call's facts as
    ``tool_execution_modes`` (call id -> mode)."""
    modes = {}
    for i, call in enumerate(calls):
        if not TOOL_CALL_KEYS.issuperset(call):
            m.check_keys(call, TOOL_CALL_KEYS, "message.assistant.content.toolCall")
        cid = call.get("id")
        if type(cid) is not str or not cid:
            m.wrong("message.assistant.content.toolCall.id", "missing_or_not_a_string",
                    f"toolCall {i}: {cid!r:.80} is no call id: the call's id is '{rid}#{i}'")
        if "executionMode" in call:
            modes[call_id(call, rid, i)] = call["executionMode"]
    if not modes:
        return facts
    return {**(facts or {}), "tool_execution_modes": modes}
