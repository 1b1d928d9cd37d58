"""Checking one schema-v2 run: its session, every event's schema, lineage and order.

``check_run`` reads one run and returns a ``RunCheck`` (counts plus every problem as
``file:line: field: message``); ``tracebridge.schema.validate`` folds those over a trace root.

Lineage rules: exactly one root (``parent_event_id`` null and ``root: true``); every other
event's parent is an earlier event of the same run; event ids are unique; no cycles. Beyond lineage
(``tracebridge.schema.consistency``): tool results answer earlier calls, steps never go back, a role's
event types are recorded under that role.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from tracebridge.capture.reader import MAX_LINE_BYTES, Line, RunDir, iter_lines
from tracebridge.schema.consistency import Consistency
from tracebridge.schema.events import EVENT_TYPES, SCHEMA_VERSION
from tracebridge.schema.lineage import Lineage
from tracebridge.schema.strict import validate_file_event, validate_file_session


@dataclass(frozen=True)
class Problem:
    """One problem, located as precisely as the input allows."""

    file: str
    line: int | None
    field: str
    message: str
    kind: str  # json | torn | schema | drift | lineage | order | incomplete | empty | abandoned | capture
    # | nonfinite | one of schema.consistency.CONSISTENCY_RULES

    def __str__(self) -> str:
        return f"{self.file}:{self.line if self.line is not None else '-'}: {self.field}: {self.message}"


@dataclass
class RunCheck:
    run_id: str
    complete: bool
    events: int = 0
    schema_valid_events: int = 0
    lineage_valid_events: int = 0
    session_valid: bool = False
    events_file_ok: bool = True  # False: events.jsonl missing or unreadable
    torn_tail: bool = False
    bad_lines: int = 0
    problems: list[Problem] = field(default_factory=list)
    drift: Counter[str] = field(default_factory=Counter)

    @property
    def schema_valid(self) -> bool:
        """Session and every event match the schema, there is at least one event and no torn last line
        (the export quarantines such runs as ``no_events`` and ``torn_tail``). Only a complete run can
        be: a live run's torn tail is a write in progress (``check_run`` only counts it)."""
        return (self.complete and self.session_valid and self.events_file_ok and self.bad_lines == 0
                and not self.torn_tail and self.schema_valid_events == self.events and self.events > 0)

    @property
    def lineage_valid(self) -> bool:
        """Whether the run has events and every one has valid lineage."""
        return self.lineage_valid_events == self.events and self.events > 0


def _field_path(loc: tuple[Any, ...], tag: str | None = None) -> str:
    parts = [str(p) for p in loc]
    if tag is not None and parts and parts[0] == tag:
        parts = parts[1:]
    return ".".join(parts) or "<root>"


def schema_problems(err: ValidationError, file: str, line: int | None, tag: Any,
                    drift: Counter[str]) -> list[Problem]:
    """Turn a pydantic error into located problems, counting drift (unknown fields/types; an
    ``event_type`` that is missing or not a string is a schema problem, not drift)."""
    out = []
    for e in err.errors():
        path = _field_path(e["loc"], tag)
        if e["type"] == "extra_forbidden":
            key = f"{tag}.{path}" if tag else path
            drift[key] += 1
            out.append(Problem(file, line, path, "unknown field (schema drift)", "drift"))
        elif e["type"] == "union_tag_not_found":  # no event_type key: pydantic's words name no field
            out.append(Problem(file, line, "event_type", "Field required (names the event's type)", "schema"))
        elif e["type"] == "union_tag_invalid" and not isinstance(tag, str):  # a wrong type, not a newer writer
            out.append(Problem(file, line, "event_type", f"must be a string naming the event type, got "
                               f"{type(tag).__name__} {tag!r}", "schema"))
        elif e["type"] == "union_tag_invalid":
            drift[f"event_type={tag}"] += 1
            out.append(Problem(file, line, "event_type",
                               f"unknown event type {tag!r} (schema drift); expected one of "
                               f"{', '.join(EVENT_TYPES)}", "drift"))
        elif e["type"] == "literal_error" and path == "schema_version":
            drift[f"schema_version={e.get('input')}"] += 1
            out.append(Problem(file, line, path, f"unsupported schema version {e.get('input')!r}; "
                               f"this reader takes {SCHEMA_VERSION!r}", "drift"))
        else:
            out.append(Problem(file, line, path, e["msg"], "schema"))
    return out


def _check_session(run: RunDir, chk: RunCheck, out: dict[str, Any] | None = None) -> None:
    path = str(run.session_path)
    try:
        data = run.read_session()
    except (OSError, ValueError) as exc:  # an OSError's words without the path the problem names already; JSON's
        if isinstance(exc, json.JSONDecodeError):  # errors located: the line, and the column in the message
            chk.problems.append(Problem(path, exc.lineno, "<file>", f"not JSON: {exc.msg} (column {exc.colno})", "json"))
            return
        why = exc.strerror or exc if isinstance(exc, OSError) else exc
        msg = "not a file (a folder)" if isinstance(exc, IsADirectoryError) else f"unreadable: {why}"
        chk.problems.append(Problem(path, None, "<file>", msg, "json"))
        return
    if out is not None and isinstance(data, dict):
        out.update(data)
    try:
        validate_file_session(data)
    except ValidationError as exc:
        chk.problems.extend(schema_problems(exc, path, None, None, chk.drift))
        return
    chk.session_valid = True
    if data["run_id"] != run.run_id:
        chk.session_valid = False
        chk.problems.append(Problem(path, None, "run_id",
                                    f"{data['run_id']!r} does not match directory {run.run_id!r} (a run folder "
                                    "copied or renamed: a run's folder is named by its run_id)", "schema"))
    if data["finished_at"] < data["started_at"]:  # fixed-width UTC strings: string order is time order
        chk.problems.append(Problem(path, None, "finished_at", f"{data['finished_at']} is earlier than "
                                    f"started_at ({data['started_at']})", "order"))


def _event_lines(run: RunDir, chk: RunCheck, max_line_bytes: int = MAX_LINE_BYTES) -> Iterator[Line]:
    """The run's event lines. A missing or unreadable events file (a folder, chmod 000) is a problem
    of the run that fails its schema check, never an exception that stops the whole root."""
    try:
        yield from iter_lines(run.events_path, max_line_bytes=max_line_bytes)
    except OSError as exc:
        chk.events_file_ok = False
        msg = "missing events file" if isinstance(exc, FileNotFoundError) else f"unreadable: {exc.strerror or exc}"
        chk.problems.append(Problem(str(run.events_path), None, "<file>", msg, "json"))


def check_run(run: RunDir, events: list[tuple[int, dict[str, Any]]] | None = None,
              session: dict[str, Any] | None = None, max_line_bytes: int = MAX_LINE_BYTES) -> RunCheck:
    """Check one run: session schema, every event's schema, lineage, order.

    Args:
        run: the run directory.
        events: if given, receives ``(line number, event)`` of every line that parsed to an
            object, so a caller that needs the events does not read the file twice.
        session: if given, receives the parsed ``session.json`` (when it parses to an object).
        max_line_bytes: a longer event line is a problem of its own (read past in bounded chunks).

    Returns:
        The run's counts and every problem found, located by file, line and field.
    """
    chk = RunCheck(run_id=run.run_id, complete=run.complete)
    path = str(run.events_path)
    if chk.complete:
        _check_session(run, chk, session)
    else:
        chk.problems.append(Problem(str(run.path), None, "session.json",
                                    "missing: run is incomplete (still running or crashed)", "incomplete"))
    lineage = Lineage(chk.run_id, lambda line, fld, msg: chk.problems.append(Problem(path, line, fld, msg, "lineage")))
    consistency = Consistency(lambda line, fld, msg, kind: chk.problems.append(Problem(path, line, fld, msg, kind)))
    last_ts = ""
    for ln in _event_lines(run, chk, max_line_bytes):
        if ln.error is not None:
            if ln.torn:
                chk.torn_tail = True
                what = ("torn last line in a closed run (the file was cut after the run ended; the export "
                        "quarantines the run as torn_tail)" if chk.complete else
                        "torn tail line (writer stopped mid-write)")
                chk.problems.append(Problem(path, ln.lineno, "<line>", f"{what}; earlier lines are intact", "torn"))
            else:
                chk.bad_lines += 1
                chk.problems.append(Problem(path, ln.lineno, "<line>", ln.error, "json"))
            continue
        obj = ln.obj
        chk.events += 1
        if not isinstance(obj, dict):
            chk.problems.append(Problem(path, ln.lineno, "<line>", "event is not a JSON object", "schema"))
            continue
        if events is not None:
            events.append((ln.lineno, obj))
        tag = obj.get("event_type")
        try:
            validate_file_event(obj)
            chk.schema_valid_events += 1
        except ValidationError as exc:
            chk.problems.extend(schema_problems(exc, path, ln.lineno, tag, chk.drift))
        lineage.add(ln.lineno, obj)
        consistency.add(ln.lineno, obj)
        ts = obj.get("timestamp")
        if isinstance(ts, str):
            if ts < last_ts:
                chk.problems.append(Problem(path, ln.lineno, "timestamp",
                                            f"{ts} is earlier than the previous event ({last_ts})", "order"))
            last_ts = max(last_ts, ts)
    lineage.finish(chk.events)
    chk.lineage_valid_events = lineage.valid
    if chk.events == 0:  # last, where the export's quality rules have always listed it (rule no_events)
        chk.problems.append(Problem(path, None, "<file>", "run has no events", "empty"))
    return chk
