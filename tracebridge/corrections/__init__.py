"""Human corrections of trajectories (seed 004, risk 4: "mix real-tool traces with human-corrected
trajectories"): a JSONL file beside the append-only traces (``records``), joined to each run's
events in memory at export (``apply``), accounted for over a trace root (``summary``) and checked
by ``tracebridge corrections check`` (``check``). Raw traces are never edited.

Public API: ``read_corrections``, ``match_run``, ``apply_corrections``, ``overlay``,
``CorrectionsReport``, ``check_corrections``.
"""

from tracebridge.corrections.apply import apply_corrections, match_run, overlay
from tracebridge.corrections.check import check_corrections
from tracebridge.corrections.records import DEFAULT_FILE, CorrectionsError, read_corrections
from tracebridge.corrections.summary import CorrectionsReport

__all__ = ["DEFAULT_FILE", "CorrectionsError", "CorrectionsReport", "apply_corrections", "check_corrections",
           "match_run", "overlay", "read_corrections"]
