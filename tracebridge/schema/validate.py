"""Validation of schema-v2 runs: schema, drift and lineage, streamed run by run.

``check_run`` reads one run and returns a ``RunCheck`` (counts plus every problem as
``file:line: field: message``); ``validate_root`` folds those over a trace root into a
``ValidationReport`` with the seed's acceptance percentages and a pass/fail against thresholds.

A run without ``session.json`` is incomplete: still running, or crashed before it closed. One
whose events file has not changed for ``Thresholds.stale_after_s`` is **abandoned** (a process
that died without closing its recorder) and fails validation by default (``max_abandoned_pct``
= 0: every finished run must produce its session.json); fresh incomplete runs are only counted,
so a live trace root validates while agents write to it.

Events a fail-open recorder could not write (a payload the schema refuses, a full disk) are gone
from the events file, which still validates; ``session.json`` counts them (``capture.events_dropped``).
``validate_root`` reports each such run as a ``capture`` problem and totals them
(``events_dropped``); ``Thresholds.max_events_dropped`` fails the report above that many
(``tracebridge validate``: 0 unless ``--max-dropped-events``; None = counted, not judged). NaN and
infinite floats a recorder wrote as strings (``capture.nonfinite_values``: kept, JSON has no such
numbers) are a ``nonfinite`` problem of the run and totalled (``nonfinite_values``), not judged.

Lineage rules: exactly one root (``parent_event_id`` null and ``root: true``); every other
event's parent is an earlier event of the same run; event ids are unique; no cycles. Beyond lineage
(``tracebridge.schema.consistency``): tool results answer earlier calls, steps never go back, a role's
event types are recorded under that role.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from pydantic import ValidationError

from tracebridge.capture.reader import (
    MAX_LINE_BYTES,
    Line,
    RunDir,
    iter_lines,
    iter_runs,
    nested_roots,
)
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


@dataclass
class Thresholds:
    min_schema_valid_pct: float = 100.0
    min_lineage_valid_pct: float = 98.0
    max_incomplete_pct: float = 100.0  # runs without session.json, in progress or abandoned
    max_abandoned_pct: float = 0.0  # incomplete runs whose events file is older than stale_after_s
    stale_after_s: float = 3600.0
    max_events_dropped: int | None = None  # events recorders dropped (session.json capture); None = not judged


@dataclass
class ValidationReport:
    runs_total: int = 0
    runs_complete: int = 0
    runs_incomplete: int = 0
    runs_abandoned: int = 0
    runs_schema_valid: int = 0
    events_total: int = 0
    events_schema_valid: int = 0
    events_lineage_valid: int = 0
    torn_tails: int = 0
    events_dropped: int = 0  # events recorders could not write (fail-open), from session.json capture
    runs_with_dropped_events: int = 0
    nonfinite_values: int = 0  # NaN/inf floats recorders wrote as strings ("NaN"), from session.json capture
    runs_with_nonfinite_values: int = 0
    nested_runs_not_read: int = 0  # run folders in sub-folders of the root (``nested_roots``): not read
    problems_total: int = 0
    problems_by_kind: Counter[str] = field(default_factory=Counter)
    drift: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    thresholds: Thresholds = field(default_factory=Thresholds)

    @property
    def schema_valid_pct(self) -> float:
        """Percent of complete runs that are schema-valid (100 when none is complete)."""
        return 100.0 * self.runs_schema_valid / self.runs_complete if self.runs_complete else 100.0

    @property
    def lineage_valid_pct(self) -> float:
        """Percent of events with valid lineage (100 when there are none)."""
        return 100.0 * self.events_lineage_valid / self.events_total if self.events_total else 100.0

    @property
    def incomplete_pct(self) -> float:
        """Percent of runs that are incomplete (0 when there are none)."""
        return 100.0 * self.runs_incomplete / self.runs_total if self.runs_total else 0.0

    @property
    def abandoned_pct(self) -> float:
        """Percent of runs that are abandoned (0 when there are none)."""
        return 100.0 * self.runs_abandoned / self.runs_total if self.runs_total else 0.0

    def failures(self) -> list[str]:
        """Reasons the report fails its thresholds (empty = pass)."""
        t, out = self.thresholds, []
        if self.runs_total == 0:
            out.append("no runs found" + (f" ({self.nested_runs_not_read} run folder(s) in sub-folders: validate "
                                          "each sub-folder, see problems)" if self.nested_runs_not_read else ""))
        if self.schema_valid_pct < t.min_schema_valid_pct:
            out.append(f"schema-valid {self.schema_valid_pct:.2f}% < {t.min_schema_valid_pct}%")
        if self.lineage_valid_pct < t.min_lineage_valid_pct:
            out.append(f"lineage-valid {self.lineage_valid_pct:.2f}% < {t.min_lineage_valid_pct}%")
        if self.incomplete_pct > t.max_incomplete_pct:
            out.append(f"incomplete {self.incomplete_pct:.2f}% > {t.max_incomplete_pct}%")
        if self.abandoned_pct > t.max_abandoned_pct:
            out.append(f"abandoned {self.runs_abandoned} run(s) ({self.abandoned_pct:.2f}% > {t.max_abandoned_pct}%): "
                       f"no session.json and no event for over {t.stale_after_s:.0f} s")
        if t.max_events_dropped is not None and self.events_dropped > t.max_events_dropped:
            out.append(f"{self.events_dropped} event(s) dropped at capture in {self.runs_with_dropped_events} "
                       f"run(s) (> {t.max_events_dropped}): the recorder logged why; those runs have gaps")
        return out

    @property
    def passed(self) -> bool:
        """Whether every threshold is met (``failures()`` is empty)."""
        return not self.failures()

    def add(self, chk: RunCheck, max_problems: int, count: bool = True) -> None:
        """Count one run's check, keeping at most ``max_problems`` problem lines in all; with ``count``
        false only its problems (a folder that is no run of the root)."""
        if count:
            self.runs_total += 1
            self.runs_complete += chk.complete
            self.runs_incomplete += not chk.complete
            self.runs_schema_valid += chk.schema_valid
        self.events_total += chk.events
        self.events_schema_valid += chk.schema_valid_events
        self.events_lineage_valid += chk.lineage_valid_events
        self.torn_tails += chk.torn_tail
        self.drift.update(chk.drift)
        for p in chk.problems:
            self.problems_total += 1
            self.problems_by_kind[p.kind] += 1
            if len(self.problems) < max_problems:
                self.problems.append(str(p))

    def to_dict(self) -> dict[str, Any]:
        """The report as a plain dict, plus the rates (rounded to 3 places), ``passed`` and
        ``failures``."""
        d = asdict(self)
        d.update(  # asdict rebuilds a Counter from its (key, count) pairs, counting the pairs: plain dicts
            problems_by_kind=dict(self.problems_by_kind), drift=dict(self.drift),
            schema_valid_pct=round(self.schema_valid_pct, 3), lineage_valid_pct=round(self.lineage_valid_pct, 3),
            incomplete_pct=round(self.incomplete_pct, 3), abandoned_pct=round(self.abandoned_pct, 3),
            passed=self.passed, failures=self.failures(),
        )
        return d


# session.json capture counts that make a run's problem: (key = report total, report runs key, message, kind)
_CAPTURE_COUNTS = (
    ("events_dropped", "runs_with_dropped_events",
     "{n} event(s) dropped at capture (fail-open; the recorder logged why): the run has gaps", "capture"),
    ("nonfinite_values", "runs_with_nonfinite_values",
     '{n} NaN/infinite float(s) written as the strings "NaN", "Infinity", "-Infinity" (JSON has no such numbers)',
     "nonfinite"),
)


def validate_root(root: str | os.PathLike[str], thresholds: Thresholds | None = None,
                  max_problems: int = 200, max_line_bytes: int = MAX_LINE_BYTES) -> ValidationReport:
    """Validate every run under ``root`` (streaming; memory does not grow with the root)."""
    report = ValidationReport(thresholds=thresholds or Thresholds())
    now = time.time()
    for folder, runs in nested_roots(root):  # not runs of this root: listed, so no run goes uncounted unsaid
        report.nested_runs_not_read += runs
        report.add(RunCheck(run_id=folder.name, complete=False, problems=[Problem(
            str(folder), None, "<folder>", f"holds no run files but {runs} run folder(s) below it, not read: "
            f"validate {folder} (a trace root holds run folders directly)", "nested")]), max_problems, count=False)
    for run in iter_runs(root):
        session: dict[str, Any] = {}
        chk = check_run(run, session=session, max_line_bytes=max_line_bytes)
        for key, runs_key, text, kind in _CAPTURE_COUNTS:
            n = _capture_count(session, key)
            if n:
                setattr(report, key, getattr(report, key) + n)
                setattr(report, runs_key, getattr(report, runs_key) + 1)
                chk.problems.append(Problem(str(run.session_path), None, f"capture.{key}", text.format(n=n), kind))
        if not chk.complete:
            idle = now - _last_write(run)
            if idle > report.thresholds.stale_after_s:
                report.runs_abandoned += 1
                chk.problems.append(Problem(str(run.path), None, "session.json", f"missing and no event for "
                                            f"{idle / 3600:.1f} h: run abandoned (crashed without closing)",
                                            "abandoned"))
        report.add(chk, max_problems)
    return report


def _capture_count(session: dict[str, Any], key: str) -> int:
    """``session.json``'s ``capture.<key>`` count (0 when absent or not a count)."""
    capture = session.get("capture")
    n = capture.get(key) if isinstance(capture, dict) else None
    return n if isinstance(n, int) and not isinstance(n, bool) and n > 0 else 0


def _last_write(run: RunDir) -> float:
    """When the run last wrote anything (its events file, else its folder)."""
    try:
        return run.events_path.stat().st_mtime
    except OSError:
        return run.path.stat().st_mtime
