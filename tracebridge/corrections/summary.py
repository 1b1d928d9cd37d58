"""What became of every line of a corrections file, over a whole trace root.

``CorrectionsReport`` gathers the file's checks (``read_corrections``) and each run's outcome
(``match_run``), in run order, and states them as the export report's ``corrections`` section and
as the result of ``tracebridge corrections check``. Counts reconcile: lines read = applied +
unmatched (run or event id not in the trace root) + quarantined (bad line, or a label on an event
of the wrong type). Deterministic: lists in file-line order, no times.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tracebridge.corrections.apply import RunOutcome
from tracebridge.corrections.records import CorrectionsFile


def _same(text: str) -> str:
    return text


@dataclass
class CorrectionsReport:
    """One corrections file joined to one trace root (``add`` each run, then ``to_dict``)."""

    file: CorrectionsFile
    runs: list[RunOutcome] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)  # run ids of the trace root
    not_exported: list[dict[str, Any]] = field(default_factory=list)

    def add(self, run_id: str, outcome: RunOutcome | None, status: str = "exported") -> None:
        """Account for one run of the root: its corrections' outcome (None when it has none) and
        what the export did with it (``exported``; ``duplicate`` or ``quarantined`` are listed, as
        their corrections reach no row)."""
        self.seen.add(run_id)
        if outcome is None or not outcome.read:
            return
        self.runs.append(outcome)
        if status in ("duplicate", "quarantined") and outcome.applied:
            self.not_exported.append({"run_id": run_id, "status": status, "lines": len(outcome.applied)})

    def unmatched_runs(self) -> list[tuple[int, dict[str, str | None]]]:
        """Lines whose run id is not in the trace root, as ``(line, {where, run_id, event_id})``."""
        return sorted(((c.line, {"where": c.where, "run_id": c.run_id, "event_id": c.event_id})
                       for rid, cs in self.file.by_run.items() if rid not in self.seen for c in cs),
                      key=lambda x: x[0])

    def unmatched_events(self) -> list[tuple[int, dict[str, str | None]]]:
        """Lines whose event id is not an event of their run."""
        return sorted((u for r in self.runs for u in r.unmatched), key=lambda x: x[0])

    def quarantined(self) -> list[tuple[int, str]]:
        """Bad lines and labels on events of the wrong type, as ``(line, reason)``."""
        return sorted([*self.file.bad, *(q for r in self.runs for q in r.quarantined)])

    def counts(self) -> dict[str, int]:
        """Line counts: ``lines_read``, ``applied``, ``unmatched`` (run or event id not found)
        and ``quarantined``."""
        applied = sum(len(r.applied) for r in self.runs)
        unmatched = sum(len(r.unmatched) for r in self.runs) + len(self.unmatched_runs())
        quarantined = len(self.quarantined())
        return {"lines_read": self.file.read, "applied": applied, "unmatched": unmatched, "quarantined": quarantined}

    def failures(self) -> list[str]:
        """Count identities that must hold (empty = they do)."""
        c = self.counts()
        if c["lines_read"] != c["applied"] + c["unmatched"] + c["quarantined"]:
            return [(f"corrections: lines read {c['lines_read']} != applied {c['applied']} + unmatched "
                     f"{c['unmatched']} + quarantined {c['quarantined']}")]
        return []

    def problems(self) -> list[str]:
        """Every bad or unmatched line as ``file:line: field: reason``, in line order."""
        out = self.quarantined()
        out += [(ln, f"{u['where']}: run_id: {u['run_id']} is not a run of the trace root")
                for ln, u in self.unmatched_runs()]
        out += [(ln, f"{u['where']}: event_id: {u['event_id']} is not an event of run {u['run_id']}")
                for ln, u in self.unmatched_events()]
        return [why for _, why in sorted(out)]

    def to_dict(self, mask: Callable[[str], str] | None = None) -> dict[str, Any]:
        """The report section; ``mask`` redacts free text (reasons quote what reviewers wrote)."""
        m = mask or _same
        labels: Counter[str] = Counter()
        for r in self.runs:
            labels.update(r.labels)
        outcomes = [r for r in self.runs if r.success is not None]
        return {
            "file": self.file.path, "sha256": self.file.sha256, **self.counts(),
            "superseded_labels": sum(r.superseded for r in self.runs),
            "runs_corrected": sum(1 for r in self.runs if r.applied),
            "labels": dict(sorted(labels.items())),
            "outcomes": {"runs": len(outcomes), "changed": sum(1 for r in outcomes if r.success != r.trace_success)},
            "unmatched_runs": [{k: v if v is None else m(v) for k, v in u.items()} for _, u in self.unmatched_runs()],
            "unmatched_events": [{k: v if v is None else m(v) for k, v in u.items()} for _, u in self.unmatched_events()],
            "quarantined_lines": [m(why) for _, why in self.quarantined()],
            "not_exported": self.not_exported,
            "reconciled": not self.failures(),
        }


def render_markdown(sec: dict[str, Any]) -> list[str]:
    """The report.md lines of a ``corrections`` section."""
    lines = ["## Corrections", "",
             (f"File `{sec['file']}` (sha256 {sec['sha256'][:12]}): lines read {sec['lines_read']} = applied "
              f"{sec['applied']} + unmatched {sec['unmatched']} + quarantined {sec['quarantined']}; "
              f"{sec['runs_corrected']} runs corrected, {sec['superseded_labels']} labels superseded by a later line, "
              f"{sec['outcomes']['runs']} outcomes set by a person ({sec['outcomes']['changed']} changed)."), ""]
    lines += [f"- labels: {sec['labels']}"] if sec["labels"] else []
    lines += [f"- unmatched: {u['where']} run {u['run_id']}" + (f" event {u['event_id']}" if u["event_id"] else "")
              for u in [*sec["unmatched_runs"], *sec["unmatched_events"]][:50]]
    lines += [f"- quarantined: {why}" for why in sec["quarantined_lines"][:50]]
    lines += [f"- not exported: run {x['run_id']} ({x['status']}), {x['lines']} line(s)" for x in sec["not_exported"]]
    return [*lines, ""]
