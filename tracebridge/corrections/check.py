"""``tracebridge corrections check``: a corrections file against a trace root, before any export.

Every line is checked as the export checks it (``read_corrections``, then ``match_run`` against
the events of its run), without building a view: the result is the export report's
``corrections`` section, and ``problems()`` lists each bad or unmatched line as ``file:line``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from tracebridge.capture.reader import RunDir, iter_lines, iter_runs
from tracebridge.corrections.apply import match_run
from tracebridge.corrections.records import read_corrections
from tracebridge.corrections.summary import CorrectionsReport


def _events(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    return [ln.obj for ln in iter_lines(path) if ln.error is None and isinstance(ln.obj, dict)]


def _session(run: RunDir) -> dict[str, Any] | None:
    try:
        data = run.read_session()
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def check_corrections(path: str | os.PathLike[str], root: str | os.PathLike[str]) -> CorrectionsReport:
    """Check every line of the corrections file ``path`` against the runs under ``root``.

    Raises:
        CorrectionsError: the file cannot be read.
        FileNotFoundError: ``root`` is not a trace root.
    """
    corrections = read_corrections(path)
    report = CorrectionsReport(corrections)
    for run in iter_runs(root):  # name order, as the export
        mine = corrections.by_run.get(run.run_id)
        outcome = match_run(mine, _events(run.events_path), run.run_id, _session(run))[0] if mine else None
        report.add(run.run_id, outcome)
    return report
