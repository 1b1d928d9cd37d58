"""``tracebridge validate`` of a root with nothing to measure shows ``n/a`` for a rate of 0 runs or events.
Before, an empty root showed "schema-valid 100.00%" and "lineage-valid 100.00% of 0" next to its
"FAIL: no runs found": 0 of 0 read as all valid."""

from __future__ import annotations

import re
from pathlib import Path

from typer.testing import CliRunner

from tests.conftest import record_sample_run
from tracebridge.cli import app


def _row(out: str, label: str) -> str:
    """The value cell of the table row ``label``."""
    m = re.search(rf"{re.escape(label)}\s*│\s*(.+?)\s*│", out)
    assert m, out
    return m.group(1)


def test_an_empty_root_shows_na_not_100_percent(tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["validate", str(tmp_path)])
    assert res.exit_code == 1, res.output
    assert _row(res.stdout, "schema-valid (complete runs)") == "n/a of 0"
    assert _row(res.stdout, "lineage-valid (events)") == "n/a of 0"
    assert "100.00%" not in res.stdout and "FAIL: no runs found" in res.stdout


def test_a_root_with_a_run_shows_its_rates(tmp_path: Path) -> None:
    record_sample_run(tmp_path)
    res = CliRunner().invoke(app, ["validate", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert _row(res.stdout, "schema-valid (complete runs)") == "100.00% of 1"
    assert re.fullmatch(r"100\.00% of [1-9]\d*", _row(res.stdout, "lineage-valid (events)"))
