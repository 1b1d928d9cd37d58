"""The import report: counts that reconcile (lines read = accepted + quarantined; blank lines
are counted apart), drift, per-file outcomes and the first quarantined lines as
``file:line: field: reason``."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field, fields
from typing import Any

_ATTACHED = "; the row is attached to the event before it"
_NOTES = {  # why a row was noted, by kind
    "itself": "names the row itself (a loop)" + _ATTACHED,
    "unknown": ("{v!r} names no earlier row of the session (missing, quarantined, or later in the file: a loop)"
                + _ATTACHED),
    "duplicate": "{v!r} is the id of an earlier row: imported as '{v}~L{line}' (a parentId {v!r} means the first)",
    "drift": "{v} (counted as drift)",  # a value of the wrong type: SessionMapper.wrong
}


@dataclass
class ImportReport:
    files_seen: int = 0
    files_new: int = 0
    files_appended: int = 0
    files_migrated: int = 0  # of those appended or unchanged: rewritten in place by OpenClaw's v1/v2 -> v3 migration
    files_repaired: int = 0  # of those appended or unchanged: rewritten in place by OpenClaw, its header moved first
    files_unchanged: int = 0
    files_skipped: int = 0
    runs_written: int = 0
    lines_read: int = 0
    lines_accepted: int = 0
    lines_quarantined: int = 0
    lines_blank: int = 0
    lines_pending: int = 0
    lines_replayed: int = 0
    bytes_read: int = 0
    events_written: int = 0
    events_already_present: int = 0
    torn_tails_cut: int = 0  # runs whose torn last line (an import stopped mid-write) was cut before appending
    drift: Counter[str] = field(default_factory=Counter)
    counts: Counter[str] = field(default_factory=Counter)
    skipped: list[str] = field(default_factory=list)
    quarantine_samples: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    max_listed: int = 50

    @property
    def reconciles(self) -> bool:
        """Every (non-blank) line read was accepted or quarantined."""
        return self.lines_read == self.lines_accepted + self.lines_quarantined

    @property
    def imported_nothing(self) -> bool:
        """No transcript, or new input (lines, skipped files) of which no line was imported or waits (a
        session of rows without events yet, a half-written last line): the command exits 1 then."""
        done = self.runs_written + self.files_unchanged + self.lines_accepted + self.lines_pending
        return self.files_seen == 0 or (done == 0 and (self.lines_read > 0 or self.files_skipped > 0))

    def quarantine(self, where: str) -> None:
        """Count one quarantined line, keeping the first ``max_listed`` places as samples."""
        self.lines_quarantined += 1
        if len(self.quarantine_samples) < self.max_listed:
            self.quarantine_samples.append(where)

    def noted(self, file: str, notes: list[tuple[int, str, Any, str]]) -> None:
        """List the rows a session's mapper noted (``SessionMapper.notes``) as ``file:line: field: why`` while
        fewer than ``max_listed`` problems are listed; all are counted (``mapping_counts.lineage_repaired``,
        drift ``row:duplicate_id``). A ``parentId`` is followed only to a row read before it: no loop is."""
        for line, fld, value, kind in notes[:max(0, self.max_listed - len(self.problems))]:
            self.problems.append(f"{file}:{line}: {fld}: {_NOTES[kind].format(v=value, line=line)}")

    def torn_cut(self, events_path: str, nbytes: int) -> None:
        """Count and list a run whose torn last line was cut before this import appended (``RunWriter.torn_cut``)."""
        if nbytes:
            self.torn_tails_cut += 1
            self.problems.append(f"{events_path}: a torn last line ({nbytes} bytes: an earlier import stopped "
                                 "mid-write) was cut and its events written again from the source")

    def skip(self, file: str, reason: str) -> None:
        """Count one skipped file and list it as ``file: reason``."""
        self.files_skipped += 1
        self.skipped.append(f"{file}: {reason}")

    def merge(self, other: ImportReport) -> None:
        """Add ``other`` (a worker's report of one transcript) as if it had been imported here:
        merged in file order, counters, lists and the capped samples come out as one process's."""
        for f in fields(self):
            mine, theirs = getattr(self, f.name), getattr(other, f.name)
            if f.name == "max_listed":
                continue
            if f.name == "quarantine_samples":
                mine.extend(theirs[:max(0, self.max_listed - len(mine))])
            elif isinstance(mine, int):
                setattr(self, f.name, mine + theirs)
            elif isinstance(mine, Counter):  # update keeps the first-seen key order
                mine.update(theirs)
            else:
                mine.extend(theirs)

    def to_dict(self) -> dict[str, Any]:
        """The report for ``report.json``: the counters, ``drift`` (most common first), ``mapping_counts``,
        the ``read``/``accepted``/``quarantined``/``reconciles`` summary and ``imported_nothing``."""
        d = asdict(self)
        d.pop("max_listed")
        d["drift"] = dict(self.drift.most_common())
        d["mapping_counts"] = dict(sorted(self.counts.items()))
        del d["counts"]
        d.update(read=self.lines_read, accepted=self.lines_accepted, quarantined=self.lines_quarantined,
                 reconciles=self.reconciles, imported_nothing=self.imported_nothing)
        return d
