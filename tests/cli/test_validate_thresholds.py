"""``tracebridge validate``'s threshold options are checked before any run is read: a percentage
outside 0..100, NaN, a negative number of seconds or of problems to list is a usage error (exit 2).
Before, ``--min-lineage-valid nan`` passed every trace root (no comparison with NaN is true, so the
check could never fail), ``--min-schema-valid 150`` failed every one as a data failure (exit 1), and
``--max-problems -1`` listed no problem at all."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.conftest import record_sample_run
from tracebridge.cli import app


@pytest.fixture
def broken_root(tmp_path: Path) -> Path:
    """A trace root whose one run has a broken parent link: lineage below 100 %."""
    root = tmp_path / "traces"
    run_id = record_sample_run(root)
    events = root / run_id / "events.jsonl"
    lines = events.read_text().splitlines()
    row = json.loads(lines[3])
    row["parent_event_id"] = f"{run_id}:999999"
    lines[3] = json.dumps(row)
    events.write_text("\n".join(lines) + "\n")
    return root


def test_the_root_fails_lineage_at_the_default_and_when_asked_for_100(broken_root: Path) -> None:
    for args in ([], ["--min-lineage-valid", "100"]):
        res = CliRunner().invoke(app, ["validate", str(broken_root), *args, "--json"])
        assert res.exit_code == 1, (args, res.output)
        assert json.loads(res.stdout)["passed"] is False


@pytest.mark.parametrize("option, value", [
    ("--min-lineage-valid", "nan"), ("--min-schema-valid", "nan"), ("--min-schema-valid", "150"),
    ("--min-lineage-valid", "-1"), ("--max-incomplete", "101"), ("--max-abandoned", "nan"),
    ("--stale-after", "-5"), ("--stale-after", "nan"), ("--max-problems", "-1"), ("--max-dropped-events", "-7"),
])
def test_a_threshold_out_of_range_is_a_usage_error_naming_the_option(broken_root: Path, option: str,
                                                                     value: str) -> None:
    res = CliRunner().invoke(app, ["validate", str(broken_root), option, value, "--json"])
    assert res.exit_code == 2, (option, value, res.output)
    assert option in res.output
    # click's usage error comes before the options are read; under --json it is one JSON document
    assert json.loads(res.stdout)["usage"] is True


def test_minus_one_still_leaves_dropped_events_unjudged(broken_root: Path) -> None:
    res = CliRunner().invoke(app, ["validate", str(broken_root), "--max-dropped-events", "-1",
                                   "--min-lineage-valid", "0", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["thresholds"]["max_events_dropped"] is None
