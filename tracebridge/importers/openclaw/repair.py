"""Recognising a transcript OpenClaw's session manager repaired in place.

When the first row of a transcript is no session header (a header written late, a line torn off
before it), OpenClaw's session manager cannot read it and repairs it when it opens the session
(openclaw/openclaw ``src/agents/sessions/session-manager-file.ts``,
``recoverCorruptSessionEntries``): it keeps the old file as ``<id>.jsonl.corrupt-<time>-<8 hex>.jsonl``
and writes the transcript anew, the first header first, then every other row in its order, without
the lines that are no JSON and without any other header. The imported bytes then no longer match,
though not one row changed.

OpenClaw migrates an old transcript (``migration.py``) in the same rewrite when it repairs one: then
the header's version has gone up and the rows are matched as ``MigratedPrefix`` matches them (under
the imported ids, new ids made aliases; v1 rows, which had no parents, chained as they were read).

``RepairedPrefix`` puts the repaired file's rows back where the import read them (the header at its
old line, any other header, which the run keeps as an observation, at its own, the dropped lines
skipped) and replays them against the events already imported: each must give the events it gave
before. Then the rest of the file is new. Event ids come from row ids, so nothing is renamed.
"""

from __future__ import annotations

import os
from typing import Any

import orjson

from tracebridge.importers.openclaw.mapping import RowError, SessionMapper
from tracebridge.importers.openclaw.migration import (
    imported_rows,
    install_aliases,
    normal,
    note_alias,
    renamed,
    same_row,
    version_rose,
)

_LATE_HEADER = "session~L"  # the row id of a header read after other rows: session~L<line>


class RepairedPrefix:
    """Replays the repaired copy of an imported prefix; see the module docstring.

    Args:
        mapper: the session's (fresh) mapper.
        events_path: the run's ``events.jsonl``.
        events_bytes: how much of it the import state accounts for.
        quarantined: the raw lines the earlier imports quarantined from the imported prefix, by line
            (``Quarantine.quarantined_lines``): the repair drops those that are no JSON, keeps the others.
    """

    counter = "files_repaired"  # the report's count of files recognised this way

    def __init__(self, mapper: SessionMapper, events_path: str, events_bytes: int,
                 quarantined: dict[int, str]) -> None:
        self.mapper = mapper
        self.rows = imported_rows(events_path, events_bytes, mapper.prefix) if os.path.isfile(events_path) else []
        self.headers: dict[int, dict[str, Any]] = {}  # line the import read it at -> header row
        for rid, evs in self.rows:
            obs = evs[0].get("payload", {}).get("observation")
            if rid.startswith(_LATE_HEADER) and rid[len(_LATE_HEADER):].isdigit() and isinstance(obs, dict):
                self.headers[int(rid[len(_LATE_HEADER):])] = {"type": "session", **obs}
        self.dropped: set[int] = set()  # quarantined lines the repair leaves out
        self.kept: dict[int, Any] = {}  # quarantined rows the repair keeps, by line
        for line, raw in quarantined.items():
            try:
                row = orjson.loads(raw)
            except orjson.JSONDecodeError:
                self.dropped.add(line)
                continue
            if type(row) is dict and row.get("type") == "session":
                self.dropped.add(line)
            else:
                self.kept[line] = row
        self.line = 1  # the next line number of the file as it was imported
        self.done = 0  # imported rows matched so far
        self.kept_seen = 0  # kept quarantined rows matched so far
        self.migrated = False  # the same rewrite migrated the transcript too (the header's version rose)
        self.unlinked = False  # ... from v1, whose rows had no ids and no parents
        self.aliases: dict[str, str] = {}  # with a migration: new entry id -> the imported row's id
        self.why = "" if self.headers and (not self.rows or self.rows[0][0] != "session") else (
            "the imported run starts with its session header, which OpenClaw does not repair")

    @property
    def complete(self) -> bool:
        """Every imported row and every kept quarantined one was matched (the rest of the file is new)."""
        return (bool(self.headers) and self.done == len(self.rows) > 0 and self.kept_seen == len(self.kept)
                and self.line > min(self.headers))

    def feed(self, raw: bytes, lineno: int) -> bool:
        """Match one line of the repaired file; False (and ``why``) when it does not match."""
        if self.why:
            return False
        try:
            row = orjson.loads(raw)
        except orjson.JSONDecodeError:
            self.why = f"line {lineno} is not JSON"
            return False
        is_header = type(row) is dict and row.get("type") == "session"
        if lineno == 1:  # the header the import read first, moved to the top
            return self._first_header(row, is_header) and self._skip_placed()
        if is_header:
            self.why = f"line {lineno} is a second session header, which a repair leaves out"
            return False
        if self.line in self.kept:
            if row != self.kept[self.line] and not (self.migrated and same_row(row, self.kept[self.line])):
                self.why = f"line {lineno} is not the row the earlier import quarantined at line {self.line}"
                return False
            self.kept_seen += 1
            self.line += 1
            return self._skip_placed()
        new_id = None
        if self.migrated and type(row) is dict and self.done < len(self.rows):
            new_id, rid = row.get("id"), self.rows[self.done][0]
            row = renamed(row, rid, self.aliases)
            if self.unlinked:  # v1 rows had no parent: the import chained each to the row read before it
                row.pop("parentId", None)
        if not (self._replay(row, lineno) and self._skip_placed()):
            return False
        if new_id is not None:
            note_alias(self.mapper, self.aliases, new_id, rid)
        return True

    def _first_header(self, row: Any, is_header: bool) -> bool:
        """Whether the first row is the header the import read first, as it was or with its version
        gone up: OpenClaw migrated the transcript in the same rewrite (then rows are matched as
        migrated, under the imported ids)."""
        first = min(self.headers)
        old = self.headers[first]
        self.migrated = is_header and row != old and version_rose(row, old)
        self.unlinked = self.migrated and old.get("version", 1) == 1
        if is_header and (row == old or self.migrated):
            return True
        self.why = (f"its first row is not the session header the import read at line {first}, "
                    "nor that header with its version gone up (a migration in the same rewrite)")
        return False

    def _skip_placed(self) -> bool:
        """Replay the headers, and pass the dropped lines, that stood at the next lines."""
        while True:
            if self.line in self.headers:
                if not self._replay(self.headers[self.line], 1):
                    return False
            elif self.line in self.dropped:
                self.line += 1
            else:
                return True

    def _replay(self, row: Any, lineno: int) -> bool:
        """Feed ``row`` at the line the import read it at; its events must be the next imported row's."""
        try:
            events = self.mapper.feed(row, self.line)
        except RowError as exc:
            self.why = f"line {lineno}: {exc}"
            return False
        self.line += 1
        if not events:
            return True
        if self.done >= len(self.rows) or not self._same_events(events, self.rows[self.done][1]):
            self.why = f"line {lineno} does not give the events imported from line {self.line - 1}"
            return False
        self.done += 1
        return True

    def _same_events(self, events: list[dict[str, Any]], imported: list[dict[str, Any]]) -> bool:
        """The events equal, or with a migration, equal but for the fields it changes."""
        return events == imported or (self.migrated and [normal(e) for e in events] == [normal(e) for e in imported])

    def finish(self) -> None:
        """The repair keeps every row's id; a migration in the same rewrite gave new ones, which become
        aliases of the imported ones."""
        install_aliases(self.mapper, self.aliases)
