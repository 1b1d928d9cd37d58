"""Typed config of ``tracebridge import agentlightning`` (stored Agent Lightning spans → schema v2).

Values come from ``key=value`` overrides on the command line (or ``--config FILE``); there is no
YAML under ``configs/import/``, whose files are ``ImportConfig`` (the OpenClaw importer's).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tracebridge.capture.reader import MAX_LINE_BYTES
from tracebridge.importers.config import MAX_LINE_HELP, common_problems


@dataclass
class SpanImportConfig:
    """Settings of ``tracebridge import agentlightning``."""

    state_file: str = field(default="agentlightning-state.json", metadata={
        "help": "Import state (bytes read per span file, digest and run of each imported rollout, the "
                "records of rollouts still running), under <out>/.import/."})
    quarantine_file: str = field(default="agentlightning-quarantine.jsonl", metadata={
        "help": "Rejected lines with file, line, field, reason and the raw line, under <out>/.import/."})
    goal_family: str = field(default="agentlightning", metadata={
        "help": "Goal family of the imported runs (the export splits train/validation/test by family)."})
    final: bool = field(default=False, metadata={
        "help": "Treat every span file as finished: a half-written last line is quarantined as truncated "
                "instead of left for the next import, and rollouts whose Rollout record says they are "
                "still running are imported as they are instead of waiting for their end."})
    max_line_bytes: int = field(default=MAX_LINE_BYTES, metadata={"help": MAX_LINE_HELP})
    max_listed: int = field(default=50, metadata={"help": "Quarantined lines listed in the report (all are counted)."})
    checkpoint_every: int = field(default=200, metadata={"help": "Save the import state every N rollouts."})
    lock_timeout_s: float = field(default=0.0, metadata={
        "help": "Seconds to wait for another import into the same root; 0 = fail at once."})
    min_lineage_valid: float = field(default=98.0, metadata={
        "help": "--validate: minimum % of imported events with valid lineage (percent)."})

    def validate(self) -> list[str]:
        """Every problem, as ``key=value: what; fix`` (the shared settings' too)."""
        p = [] if self.goal_family else ["goal_family='': must not be empty; typical agentlightning"]
        return p + common_problems(self)
