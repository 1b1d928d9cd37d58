"""OpenClaw's SQLite transcript store → transcript files the importer reads like any other.

Current OpenClaw keeps new transcripts in one SQLite database per agent,
``<state>/agents/<agent>/agent/openclaw-agent.sqlite`` (openclaw/openclaw
``src/state/openclaw-agent-db.paths.ts``), not in ``sessions/*.jsonl``: table
``transcript_events(session_id, seq, event_json, created_at)`` holds one transcript entry per row,
the JSON of a ``.jsonl`` line, in ``seq`` order; ``sessions`` and ``session_entries`` hold each
session's key, chat type and channel (``src/state/openclaw-agent-schema.generated.ts``; the
``sessions.json`` entries then name ``sqlite:<agent>:<session id>:<store>`` as their file).

``read_sessions`` streams each session's rows, one transcript line per row (a row that is no JSON
object stays one line, which the importer quarantines: nothing is dropped here, so every row is
counted once, by the import that first reads it). ``materialize`` writes each session as
``<cache>/<agent>-<db hash>/<session id>.jsonl`` (replaced only when its bytes changed), so the
import pairs, quarantines, reports and increments them as files: the events are append-only by
``seq``, so a session that grew becomes a file that grew, and one whose rows were deleted or
rewritten becomes a shorter or changed file, which the import reports and leaves alone. The
database is opened read-only, in one read transaction (a snapshot, also while OpenClaw writes to
it), waiting at most ``busy_timeout_s`` for a writer's lock, and never written.
"""

from __future__ import annotations

import filecmp
import hashlib
import itertools
import os
import sqlite3
from collections.abc import Iterator
from operator import itemgetter
from pathlib import Path
from typing import Any

import orjson

from tracebridge.importers.openclaw.discover import Transcript
from tracebridge.importers.openclaw.session import run_id_for

BUSY_TIMEOUT_S = 5.0  # how long a read waits for OpenClaw's write lock before the database is a problem


class StoreError(Exception):
    """An agent database that could not be read (to the end); the message names its file."""


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
            except (orjson.JSONDecodeError, TypeError):
                continue
            if isinstance(entry, dict):
                out[sid] = {**out.get(sid, {}), **entry, "key": key}


def event_line(event: Any) -> bytes:
    """One ``event_json`` value as one transcript line (with its newline).

    Bytes (the row as stored) are kept; a NULL becomes ``null`` (which the import quarantines as no
    object); a value spread over several lines is written on one: valid JSON compacted, anything
    else with its line breaks escaped (still no JSON, so quarantined with its content).
    """
    if event is None:
        raw = b"null"
    elif isinstance(event, bytes):
        raw = event
    else:
        raw = str(event).encode()
    if b"\n" in raw:
        try:
            raw = orjson.dumps(orjson.loads(raw))
        except orjson.JSONDecodeError:
            raw = raw.replace(b"\n", b"\\n")
    return (raw if raw.strip() else b'""') + b"\n"  # a blank row is an event too: quarantined, not skipped


def _problem(db_path: Path, exc: sqlite3.Error) -> StoreError:
    hint = " (a writer held its lock past the wait; the next import reads it)" if "locked" in str(exc) else ""
    return StoreError(f"{db_path}: unreadable OpenClaw agent database: {exc}{hint}")


def read_sessions(db_path: Path, problems: list[str], busy_timeout_s: float = BUSY_TIMEOUT_S,
                  ) -> Iterator[tuple[str, dict[str, Any] | None, Iterator[tuple[int, bytes]]]]:
    """Each session of one agent database, streamed: (session id, index entry, its (seq, line) rows).

    Consume each session's rows before the next session (they come from one cursor).

    Args:
        db_path: an ``openclaw-agent.sqlite``.
        problems: receives one line for a database with no transcripts table and for rows with no
            session id.
        busy_timeout_s: seconds to wait for a writer's lock.

    Raises:
        StoreError: the database cannot be opened or read (also while a session's rows are read:
            that session is incomplete).
    """
    try:
        db = sqlite3.connect(f"{db_path.resolve().as_uri()}?mode=ro", uri=True, timeout=busy_timeout_s)
    except sqlite3.Error as exc:
        raise _problem(db_path, exc) from None
    try:
        db.execute("BEGIN")  # one snapshot for the index and every row
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "transcript_events" not in tables:
            problems.append(f"{db_path}: no transcript_events table (an empty file or another schema): "
                            f"no transcripts read")
            return
        index = _index(db, tables)
        # as stored, not decoded: a text that is no UTF-8 is a bad row (quarantined), not a read error
        rows = db.execute("SELECT CAST(session_id AS BLOB), seq, CAST(event_json AS BLOB) FROM transcript_events "
                          "ORDER BY session_id, seq")
        nameless = 0
        for key, group in itertools.groupby(_checked(rows, db_path), key=itemgetter(0)):
            sid = key.decode("utf-8", "replace") if key is not None else ""
            if not sid.strip():
                nameless += sum(1 for _ in group)
                continue
            yield sid, index.get(sid), ((seq, event_line(event)) for _, seq, event in group)
        if nameless:
            problems.append(f"{db_path}: {nameless} transcript_events rows with no session_id, not imported")
    except sqlite3.Error as exc:
        raise _problem(db_path, exc) from None
    finally:
        db.close()


def _checked(rows: Iterator[Any], db_path: Path) -> Iterator[Any]:
    """``rows``, with a read error raised as ``StoreError`` wherever the rows are consumed."""
    try:
        yield from rows
    except sqlite3.Error as exc:
        raise _problem(db_path, exc) from None


def cache_folder(db_path: Path, cache: Path) -> Path:
    """The folder of one database's session files: ``<agent>-<hash of its path>`` (two homes may
    both have an agent ``main``; their files must not overwrite each other)."""
    tag = hashlib.sha256(os.path.abspath(db_path).encode("utf-8", "surrogateescape")).hexdigest()[:8]
    return cache / f"{agent_of_db(db_path) or 'db'}-{tag}"


def _write_session(path: Path, rows: Iterator[tuple[int, bytes]]) -> None:
    """Stream ``rows`` into ``path``, replacing it atomically unless it already holds exactly those
    bytes (memory stays one row, whatever the session's size); nothing is left on an error."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "wb", buffering=1 << 20) as fh:
            fh.writelines(line for _, line in rows)
        if path.is_file() and filecmp.cmp(tmp, path, shallow=False):
            tmp.unlink()
        else:
            os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def materialize(db_path: Path, cache: Path, problems: list[str],
                busy_timeout_s: float = BUSY_TIMEOUT_S) -> list[Transcript]:
    """Every session of one agent database as a transcript file under ``cache``.

    Args:
        db_path: an ``openclaw-agent.sqlite``.
        cache: folder for the files (``<out>/.import/openclaw-sqlite``).
        problems: receives one line if the database (or a part of it) cannot be read.
        busy_timeout_s: seconds to wait for a writer's lock.

    Returns:
        One live transcript per session read to its end, sorted by session id; ``origin`` names the
        database and the session, for the import's problem lines.
    """
    agent, folder = agent_of_db(db_path), cache_folder(db_path, cache)
    out: list[Transcript] = []
    try:
        for sid, entry, rows in read_sessions(db_path, problems, busy_timeout_s):
            path = folder / f"{run_id_for(sid, prefix='')}.jsonl"
            _write_session(path, rows)
            out.append(Transcript(path, agent, None, entry, origin=f"{db_path} session {sid!r}"))
    except StoreError as exc:
        problems.append(str(exc))
    return out
