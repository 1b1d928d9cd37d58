"""``tracebridge corrections check FILE --traces ROOT [--json]``: exit 0 when every line would
apply, 1 when a line is bad or unmatched (each listed as file:line), 2 on bad input."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

import tracebridge.cli  # noqa: F401 - registers every command module
from tests.conftest import record_sample_run
from tracebridge.cli.app import app

runner = CliRunner()
TIME = "2026-11-27T10:00:00Z"


def _setup(tmp_path: Path) -> tuple[Path, str, dict[str, str]]:
    root = tmp_path / "traces"
    rid = record_sample_run(root)
    events = [json.loads(x) for x in (root / rid / "events.jsonl").read_text().splitlines()]
    return root, rid, {e["event_type"]: e["event_id"] for e in events}


def _line(run_id: str, event_id: str | None, **labels: object) -> str:
    return json.dumps({"run_id": run_id, "event_id": event_id, "labels": labels, "reviewer": "alice", "time": TIME})


def test_a_clean_file_passes(tmp_path: Path) -> None:
    root, rid, ids = _setup(tmp_path)
    corr = tmp_path / "c.jsonl"
    corr.write_text("\n".join([_line(rid, ids["verifier_output"], expected_verdict="replan"),
                               _line(rid, ids["planner_output"], expected_plan=[{"description": "x", "tool": "count"}]),
                               _line(rid, None, success=False)]) + "\n")
    res = runner.invoke(app, ["corrections", "check", str(corr), "--traces", str(root)])
    assert res.exit_code == 0, res.output
    assert "3 lines: 3 apply, 0 unmatched, 0 bad; 1 runs corrected" in res.output and res.output.endswith("OK\n")
    doc = json.loads(runner.invoke(app, ["corrections", "check", str(corr), "--traces", str(root), "--json"]).stdout)
    assert (doc["applied"], doc["problems"], doc["outcomes"], doc["ok"]) == (3, [], {"runs": 1, "changed": 1}, True)


def test_bad_and_unmatched_lines_exit_1_listed_by_file_and_line(tmp_path: Path) -> None:
    root, rid, ids = _setup(tmp_path)
    corr = tmp_path / "c.jsonl"
    corr.write_text("\n".join([_line(rid, ids["verifier_output"], expected_verdict="end"),
                               _line(rid, ids["worker_output"], expected_verdict="end"),
                               _line("ghost", None, success=True),
                               _line(rid, "ghost-event", goal_met=True),
                               "[]"]) + "\n")
    res = runner.invoke(app, ["corrections", "check", str(corr), "--traces", str(root)])
    assert res.exit_code == 1
    out = res.output.splitlines()
    assert out[:4] == [
        (f"{corr}:2: labels.expected_verdict: event {ids['worker_output']} is a worker_output; "
         "expected_verdict goes on a verifier_output"),
        f"{corr}:3: run_id: ghost is not a run of the trace root",
        f"{corr}:4: event_id: ghost-event is not an event of run {rid}",
        f"{corr}:5: <line>: not a JSON object"]
    assert out[4] == "5 lines: 1 apply, 2 unmatched, 2 bad; 1 runs corrected" and out[5].startswith("FAIL: 4 line")
    js = runner.invoke(app, ["corrections", "check", str(corr), "--traces", str(root), "--json"])
    doc = json.loads(js.stdout)
    assert js.exit_code == 1 and len(doc["problems"]) == 4 and doc["reconciled"] and doc["ok"] is False
    assert (doc["lines_read"], doc["applied"], doc["unmatched"], doc["quarantined"]) == (5, 1, 2, 2)
    assert doc["unmatched_runs"] == [{"where": f"{corr}:3", "run_id": "ghost", "event_id": None}]


def test_bad_input_exits_2(tmp_path: Path) -> None:
    root, _, _ = _setup(tmp_path)
    res = runner.invoke(app, ["corrections", "check", str(tmp_path / "none.jsonl"), "--traces", str(root)])
    assert res.exit_code == 2 and "corrections file" in res.output
    (tmp_path / "c.jsonl").write_text("")
    res = runner.invoke(app, ["corrections", "check", str(tmp_path / "c.jsonl"), "--traces", str(tmp_path / "nowhere")])
    assert res.exit_code == 2 and "no such trace root" in res.output
    empty = runner.invoke(app, ["corrections", "check", str(tmp_path / "c.jsonl"), "--traces", str(root)])
    assert empty.exit_code == 0 and "0 lines" in empty.output
