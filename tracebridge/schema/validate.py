"""Validation of schema-v2 runs: schema, drift and lineage, streamed run by run.

``check_run`` (``tracebridge.schema.run_check``, re-exported here) reads one run and returns a
``RunCheck`` (counts plus every problem as ``file:line: field: message``); ``validate_root`` folds
those over a trace root into a ``ValidationReport`` with the seed's acceptance percentages and a
pass/fail against thresholds.

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

The lineage and consistency rules each run is checked against are in ``tracebridge.schema.run_check``.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from tracebridge.capture.reader import MAX_LINE_BYTES, RunDir, iter_runs, nested_roots
from tracebridge.schema.run_check import (  # re-exported: callers import them from here
    Problem,
    RunCheck,
    check_run,
    schema_problems,
)

__all__ = ["Problem", "RunCheck", "Thresholds", "ValidationReport", "check_run", "schema_problems", "validate_root"]


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
    # the same problems, structured: {file, line (None: the whole file), field, code (the kind, as in
    # problems_by_kind), message}, for tools that need not parse ``file:line: field: message``
    problem_entries: list[dict[str, Any]] = field(default_factory=list)
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
                self.problem_entries.append({"file": p.file, "line": p.line, "field": p.field, "code": p.kind,
                                             "message": p.message})

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
