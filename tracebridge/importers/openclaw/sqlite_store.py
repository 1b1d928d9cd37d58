"""OpenClaw's SQLite transcript store → transcript files the importer reads like any other.

Current OpenClaw keeps new transcripts in one SQLite database per agent,
``<state>/agents/<agent>/agent/openclaw-agent.sqlite`` (openclaw/openclaw
``src/state/openclaw-agent-db.paths.ts``), not in ``sessions/*.jsonl``: table
``transcript_events(session_id, seq, event_json, created_at)`` holds one transcript entry per row,
the JSON of a ``.jsonl`` line, in ``seq`` order; ``sessions`` and ``session_entries`` hold each
session's key, chat type and channel (``src/state/openclaw-agent-schema.generated.ts``; the
``sessions.json`` entries then name ``sqlite:<agent>:<session id>:<store>`` as their file).

``materialize`` writes each session's events as ``<cache>/<agent>/<session id>.jsonl`` (only when
its bytes changed), so the import pairs, quarantines, reports and increments them as files: the
events are append-only by ``seq``, so a session that grew becomes a file that grew. The database
is opened read-only and never written.
"""

from __future__ import annotations

import itertools
import os
import sqlite3
from pathlib import Path
from typing import Any

import orjson

from tracebridge.importers.openclaw.discover import Transcript
from tracebridge.importers.openclaw.session import run_id_for


def agent_of_db(path: Path) -> str | None:
    """``<agent>`` of ``.../agents/<agent>/agent/openclaw-agent.sqlite``, else None."""
    parts = path.parts
    if len(parts) >= 4 and parts[-2] == "agent" and parts[-4] == "agents":
        return parts[-3]
    return None


def _index(db: sqlite3.Connection, tables: set[str]) -> dict[str, dict[str, Any]]:
    """Session id → its index entry (``key``, ``chatType``, ``channel``, ...), as ``sessions.json``
    gives it: the stored entry where there is one, else the ``sessions`` columns. Metadata only:
    a schema without these columns leaves the index short, never the transcripts unread."""
    out: dict[str, dict[str, Any]] = {}
    try:
        _read_index(db, tables, out)
    except sqlite3.Error:
        pass
    return out


def _read_index(db: sqlite3.Connection, tables: set[str], out: dict[str, dict[str, Any]]) -> None:
    if "sessions" in tables:
        for sid, key, chat_type, channel in db.execute(
                "SELECT session_id, session_key, chat_type, channel FROM sessions"):
            entry = {"key": key, "chatType": chat_type, "channel": channel}
            out[sid] = {k: v for k, v in entry.items() if v is not None}
    if "session_entries" in tables:
        for key, sid, raw in db.execute("SELECT session_key, session_id, entry_json FROM session_entries"):
            try:
                entry = orjson.loads(raw)
            except orjson.JSONDecodeError:
                continue
            if isinstance(entry, dict):
                out[sid] = {**out.get(sid, {}), **entry, "key": key}


def _write_if_changed(path: Path, data: bytes) -> None:
    """Replace ``path`` by ``data`` atomically, unless it already holds exactly that."""
    try:
        if path.stat().st_size == len(data) and path.read_bytes() == data:
            return
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def materialize(db_path: Path, cache: Path, problems: list[str]) -> list[Transcript]:
    """Every session of one agent database as a transcript file under ``cache``.

    Args:
        db_path: an ``openclaw-agent.sqlite``.
        cache: folder for the files (``<out>/.import/openclaw-sqlite``).
        problems: receives one line if the database cannot be read.

    Returns:
        One live transcript per session that has events, sorted by session id.
    """
    agent = agent_of_db(db_path)
    try:
        db = sqlite3.connect(f"{db_path.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        problems.append(f"{db_path}: unreadable OpenClaw agent database: {exc}")
        return []
    out: list[Transcript] = []
    try:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "transcript_events" not in tables:
            return []
        index = _index(db, tables)
        folder = cache / (agent or run_id_for(str(db_path.parent), prefix="db-"))
        rows = db.execute("SELECT session_id, event_json FROM transcript_events ORDER BY session_id, seq")
        sid: str | None = None
        lines: list[bytes] = []
        for row_sid, event in itertools.chain(rows, [(None, None)]):  # the sentinel flushes the last session
            if row_sid != sid and sid is not None:
                path = folder / f"{run_id_for(sid, prefix='')}.jsonl"
                _write_if_changed(path, b"".join(lines))
                out.append(Transcript(path, agent, None, index.get(sid)))
                lines = []
            sid = row_sid
            if event is not None:
                lines.append((event if isinstance(event, bytes) else str(event).encode()) + b"\n")
    except sqlite3.Error as exc:
        problems.append(f"{db_path}: unreadable OpenClaw agent database: {exc}")
    finally:
        db.close()
    return out
