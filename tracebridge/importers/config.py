"""Typed config of the importers (``configs/import/*.yaml``, kind ``import``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tracebridge.capture.reader import MAX_LINE_BYTES

MAX_LINE_HELP = ("Longest input line read, its line end not counted (bytes; default 16 MiB): a longer line is "
                 "quarantined with its size and read past in 1 MiB chunks, never held whole in memory.")


@dataclass
class ImportConfig:
    """Settings of ``tracebridge import openclaw``."""

    state_file: str = field(default="openclaw-state.json", metadata={
        "help": "Import state (what was imported, per run), under <out>/.import/."})
    quarantine_file: str = field(default="openclaw-quarantine.jsonl", metadata={
        "help": "Rejected lines with file, line, field, reason and the raw line, under <out>/.import/."})
    header_scan_bytes: int = field(default=65536, metadata={
        "help": "Bytes read from the top of a transcript to find its session header (bytes)."})
    final: bool = field(default=False, metadata={
        "help": "Treat every transcript as finished: a half-written last line is quarantined as truncated "
                "instead of left for the next import (archived transcripts are always final)."})
    max_line_bytes: int = field(default=MAX_LINE_BYTES, metadata={"help": MAX_LINE_HELP})
    max_listed: int = field(default=50, metadata={"help": "Quarantined lines listed in the report (all are counted)."})
    checkpoint_every: int = field(default=200, metadata={"help": "Save the import state every N transcripts."})
    lock_timeout_s: float = field(default=0.0, metadata={
        "help": "Seconds to wait for another import into the same root; 0 = fail at once."})
    db_busy_timeout_s: float = field(default=5.0, metadata={
        "help": "Seconds to wait for OpenClaw's write lock on an agent database; past it the database is "
                "a problem line and the next import reads it."})
    min_lineage_valid: float = field(default=98.0, metadata={
        "help": "--validate: minimum % of imported events with valid lineage (percent)."})

    def validate(self) -> list[str]:
        """Every problem, as ``key=value: what; fix`` (the shared settings' too)."""
        p = []
        if self.header_scan_bytes < 1024:
            p.append(f"header_scan_bytes={self.header_scan_bytes}: must be >= 1024; typical 65536")
        if self.db_busy_timeout_s < 0:
            p.append(f"db_busy_timeout_s={self.db_busy_timeout_s}: must be >= 0")
        return p + common_problems(self)


def common_problems(cfg: Any) -> list[str]:
    """Problems of the settings every importer has: line length, checkpoints, listing, lock, validation floor,
    and the state and quarantine file names (plain names under ``<out>/.import/``)."""
    p = []
    if cfg.max_line_bytes < 1024:
        p.append(f"max_line_bytes={cfg.max_line_bytes}: must be >= 1024; typical {MAX_LINE_BYTES} (16 MiB)")
    if cfg.checkpoint_every < 1:
        p.append(f"checkpoint_every={cfg.checkpoint_every}: must be >= 1")
    if cfg.max_listed < 0:
        p.append(f"max_listed={cfg.max_listed}: must be >= 0")
    if cfg.lock_timeout_s < 0:
        p.append(f"lock_timeout_s={cfg.lock_timeout_s}: must be >= 0")
    if not 0 <= cfg.min_lineage_valid <= 100:
        p.append(f"min_lineage_valid={cfg.min_lineage_valid}: a percentage in [0, 100]")
    for k in ("state_file", "quarantine_file"):
        v = getattr(cfg, k)
        if not v or "/" in v:
            p.append(f"{k}={v!r}: a plain file name (it lives under <out>/.import/)")
    return p
