"""The report of an Agent Lightning import: ``ImportReport``'s counts (lines, files, events, drift,
quarantine) plus what became of each rollout, the span problems and the tool schemas and ids of its model calls."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from tracebridge.importers.openclaw.report import ImportReport


@dataclass
class SpanImportReport(ImportReport):
    """``ImportReport`` (lines, files, events, drift, quarantine) plus what became of each rollout."""

    files_rewritten: int = 0  # shorter, or the bytes an earlier import read differ: read again whole
    rollouts_seen: int = 0
    rollouts_imported: int = 0
    rollouts_unchanged: int = 0
    rollouts_pending: int = 0
    rollouts_skipped: int = 0
    spans_superseded: int = 0  # spans of earlier attempts (a run holds the latest attempt's)
    events_dropped: int = 0
    span_problems: int = 0  # span attributes not read (listed in ``problems``, the first ``max_listed``)
    clock_skew_rollouts: int = 0  # rollouts whose span times disagree with parent/child and sequence_id order
    clock_skew_spans: int = 0  # their spans that do (each rollout is listed in ``problems`` with an example)
    records: Counter[str] = field(default_factory=Counter)
    # model calls of the rollouts mapped whose tool schemas the spans held (recorded) or not (missing: their
    # rows get the run's schemas, inferred from the arguments unless tools.schemas_file has them)
    tool_schemas: Counter[str] = field(default_factory=Counter)
    # model calls whose reply's tool calls were recorded without ids (LiteLLM): given the ids a later prompt
    # holds for them (reconciled), or keeping ``call_K`` (unrecorded; the call is labelled so)
    tool_call_ids: Counter[str] = field(default_factory=Counter)

    @property
    def imported_nothing(self) -> bool:
        """No span file, or new input (lines, changed files) of which no rollout became a run or
        waits to become one (a rollout still running, or with no spans yet, is not a failure)."""
        done = self.runs_written + self.rollouts_unchanged + self.rollouts_pending
        return self.files_seen == 0 or (done == 0 and (self.lines_read > 0 or self.files_skipped > 0))

    def to_dict(self) -> dict[str, Any]:
        """``ImportReport.to_dict`` plus ``records`` (counts by kind, sorted), ``tool_schemas``
        (``recorded``/``missing``) and ``tool_call_ids`` (``reconciled``/``unrecorded``)."""
        d = super().to_dict()
        d["records"] = dict(sorted(self.records.items()))
        d["tool_schemas"] = {k: self.tool_schemas[k] for k in ("recorded", "missing")}
        d["tool_call_ids"] = {k: self.tool_call_ids[k] for k in ("reconciled", "unrecorded")}
        return d
