"""Recognising a transcript OpenClaw migrated in place (v1 or v2 → v3).

OpenClaw's session manager (pi-coding-agent's ``SessionManager``, ``migrateToCurrentVersion``)
rewrites an old transcript when it opens it: v1 → v2 gives every entry an ``id`` (8 hex) and a
``parentId`` (the entry before it), turns a compaction's ``firstKeptEntryIndex`` into
``firstKeptEntryId`` and sets the header's ``version``; v2 → v3 renames the message role
``hookMessage`` to ``custom``. Lines it cannot parse are dropped and every line is written anew,
so the imported bytes no longer match, though nothing of the conversation changed.

``MigratedPrefix`` replays the rewritten file's first entries against the events already imported
(``events.jsonl``): entry k of the new file must give the events of the k-th imported row, under
that row's id, modulo what the migration adds. Then the new ids are made aliases of the old
ones, so entries appended after the migration (whose ``parentId`` names a new id) continue the
imported lineage, and only they are written.
"""

from __future__ import annotations

import os
from typing import Any

import orjson

from tracebridge.importers.openclaw.mapping import RowError, SessionMapper

# Observation fields the migration adds or rewrites: left out when events are compared.
_MIGRATED_FIELDS = ("version", "firstKeptEntryIndex", "firstKeptEntryId")


def imported_rows(events_path: str, size: int, prefix: str) -> list[tuple[str, list[dict[str, Any]]]]:
    """The events of the first ``size`` bytes of a run's ``events.jsonl``, grouped by source row:
    (row id, its events), in order. A row's first event is ``<prefix><row id>``, its further ones
    ``<prefix><row id>.<k>``."""
    with open(events_path, "rb") as fh:
        data = fh.read(size)
    out: list[tuple[str, list[dict[str, Any]]]] = []
    for line in data.splitlines():
        ev = orjson.loads(line)
        eid = str(ev.get("event_id", ""))[len(prefix):]
        if out:
            rid, evs = out[-1]
            tail = eid[len(rid) + 1:]
            if eid.startswith(rid + ".") and tail.isdigit() and int(tail) == len(evs):
                evs.append(ev)
                continue
        out.append((eid, [ev]))
    return out


def same_row(new: Any, old: Any) -> bool:
    """Whether ``new`` is ``old`` as the migration rewrote it: an ``id`` and ``parentId`` added where
    it had none, its compaction index turned into an id, the role ``hookMessage`` renamed ``custom``."""
    if type(new) is not dict or type(old) is not dict:
        return bool(new == old)
    drop = {k for k in ("id", "parentId") if k not in old} | {"firstKeptEntryIndex", "firstKeptEntryId"}
    new = {k: v for k, v in new.items() if k not in drop}
    old = {k: v for k, v in old.items() if k not in drop}
    msg, was = new.get("message"), old.get("message")
    if type(msg) is dict and type(was) is dict and (was.get("role"), msg.get("role")) == ("hookMessage", "custom"):
        new["message"] = {**msg, "role": "hookMessage"}
    return new == old


def normal(ev: dict[str, Any]) -> dict[str, Any]:
    """An event without the observation fields a migration changes."""
    obs = ev.get("payload", {}).get("observation")
    if not isinstance(obs, dict) or not any(k in obs for k in _MIGRATED_FIELDS):
        return ev
    obs = {k: v for k, v in obs.items() if k not in _MIGRATED_FIELDS}
    return {**ev, "payload": {**ev["payload"], "observation": obs}}


def renamed(row: dict[str, Any], rid: str, aliases: dict[str, str]) -> dict[str, Any]:
    """A migrated row under the imported row's id ``rid``, its parent named by the imported id too."""
    row = {**row, "id": rid}
    pid = row.get("parentId")
    if type(pid) is str and pid in aliases:
        row["parentId"] = aliases[pid]
    return row


def note_alias(mapper: SessionMapper, aliases: dict[str, str], new_id: Any, rid: str) -> None:
    """Let ``new_id`` name the imported row ``rid`` from now on, unless an earlier row had it: a
    duplicate id, which the import renamed, while a parent of that id meant (and means) the first row."""
    if type(new_id) is str and new_id != rid and new_id not in mapper.anchor and new_id not in aliases:
        aliases[new_id] = rid


def install_aliases(mapper: SessionMapper, aliases: dict[str, str]) -> None:
    """Make the new entry ids aliases of the imported ones in the mapper."""
    for new_id, rid in aliases.items():
        if rid in mapper.anchor:
            mapper.anchor[new_id] = mapper.anchor[rid]
        if mapper.leaf == rid:
            mapper.leaf = new_id


def version_rose(new: Any, old: Any) -> bool:
    """Whether header ``new`` is header ``old`` with its ``version`` gone up (a migration's only change)."""
    if type(new) is not dict or type(old) is not dict:
        return False
    now, was = new.get("version"), old.get("version", 1)
    return (type(now) is int and type(was) is int and now > was
            and {k: v for k, v in new.items() if k != "version"} == {k: v for k, v in old.items() if k != "version"})


class MigratedPrefix:
    """Replays the migrated copy of an imported prefix; see the module docstring.

    Args:
        mapper: the session's (fresh) mapper.
        events_path: the run's ``events.jsonl``.
        events_bytes: how much of it the import state accounts for.
        rejected: the imported prefix's rows that the earlier import quarantined though they were
            JSON, in order (``Quarantine.rejected_rows``): the migration keeps them, with an id added.
    """

    counter = "files_migrated"  # the report's count of files recognised this way

    def __init__(self, mapper: SessionMapper, events_path: str, events_bytes: int,
                 rejected: list[Any] | None = None) -> None:
        self.mapper = mapper
        self.rows = imported_rows(events_path, events_bytes, mapper.prefix) if os.path.isfile(events_path) else []
        self.rejected = rejected or []
        self.done = 0  # imported rows matched so far
        self.skipped = 0  # rejected rows matched so far
        self.aliases: dict[str, str] = {}  # new entry id -> the imported row's id
        self.why = ""  # why the file is no migration of what was imported

    @property
    def complete(self) -> bool:
        """Every imported row and every rejected one was matched (the rest of the file is new)."""
        return self.done == len(self.rows) > 0 and self.skipped == len(self.rejected)

    def feed(self, raw: bytes, lineno: int) -> bool:
        """Match one line of the rewritten file; False (and ``why``) when it does not match."""
        if raw.isspace():
            return True
        try:
            row = orjson.loads(raw)
        except orjson.JSONDecodeError:
            self.why = f"line {lineno} is not JSON"
            return False
        if self.done == len(self.rows):  # only rejected rows can be left
            return self._rejected_again(row, lineno, "it holds more rows than were imported")
        rid, old = self.rows[self.done]
        new_id = None
        if self.done == 0:  # the header, whose version must have gone up
            if not self._version_rose(row, old[0]):
                return False
        elif type(row) is dict:
            new_id, row = row.get("id"), renamed(row, rid, self.aliases)
        try:
            events = self.mapper.feed(row, lineno)
        except RowError as exc:
            return self._rejected_again(orjson.loads(raw), lineno, str(exc))
        if [normal(e) for e in events] != [normal(e) for e in old]:
            self.why = f"line {lineno} does not give the events imported from row {rid}"
            return False
        note_alias(self.mapper, self.aliases, new_id, rid)
        self.done += 1
        return True

    def _rejected_again(self, row: Any, lineno: int, why: str) -> bool:
        """Whether ``row`` is, as migrated, the next row the earlier import quarantined."""
        if self.skipped < len(self.rejected) and same_row(row, self.rejected[self.skipped]):
            self.skipped += 1
            return True
        self.why = f"line {lineno}: {why}"
        if self.skipped < len(self.rejected):
            self.why += " (nor is it the next row the earlier import quarantined)"
        return False

    def _version_rose(self, row: Any, old_header: dict[str, Any]) -> bool:
        obs = old_header.get("payload", {}).get("observation")
        was = obs.get("version", 1) if isinstance(obs, dict) else None
        now = row.get("version") if type(row) is dict and row.get("type") == "session" else None
        if old_header.get("event_id") != self.mapper.prefix + "session" or type(was) is not int:
            self.why = "the imported run does not start with the session header"
        elif type(now) is not int or now <= was:
            self.why = f"its first row is no session header of a version above {was!r} (no migration)"
        else:
            return True
        return False

    def finish(self) -> None:
        """Make the new entry ids aliases of the imported ones in the mapper."""
        install_aliases(self.mapper, self.aliases)
