"""A run whose recorder dropped events at capture (``session.json`` ``capture.events_dropped``): the
export treats it as ``validate`` does. Before, ``validate`` failed the root (its default
``--max-dropped-events 0``) while ``export`` took the run as complete, its gaps unsaid."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

import tracebridge.cli  # noqa: F401 - registers every command module
from tests.conftest import MODEL_STACK, record_sample_run
from tracebridge.cli.app import app

runner = CliRunner()


def _root_with_a_gap(tmp_path: Path) -> tuple[Path, str]:
    """A whole run, and one whose tool result the fail-open recorder dropped (an error kind outside the taxonomy)."""
    from tracebridge.capture.recorder import Recorder

    root = tmp_path / "t"
    record_sample_run(root)
    with Recorder(root, goal="divide by zero", model_stack=MODEL_STACK, runtime_config={"max_steps": 1}) as run:
        pi = run.emit("planner_input", role="planner", payload={"goal": "divide by zero"})
        run.emit("planner_output", role="planner", parent=pi, payload={"plan": [
            {"index": 0, "description": "divide", "tool": "calc", "args": {}}], "rationale": "one step"})
        run.emit("worker_tool_call", role="worker", payload={"call_id": "c1", "tool": "calc", "args": {}})
        run.emit("worker_tool_result", role="worker", payload={"call_id": "c1", "ok": False, "error": {
            "kind": "ZeroDivisionError", "message": "division by zero"}})
        run.emit("episode_end", role="orchestrator", payload={"success": False})
    return root, run.run_id


def _rows(bundle: Path) -> list[dict]:
    return [json.loads(x) for f in sorted(bundle.glob("views/*/*.jsonl")) for x in f.read_text().splitlines()]


def test_a_run_with_dropped_events_is_quarantined_by_default_as_validate_fails_it(tmp_path: Path) -> None:
    root, gap = _root_with_a_gap(tmp_path)
    val = json.loads(runner.invoke(app, ["validate", str(root), "--json"]).stdout)
    assert val["events_dropped"] == 1 and val["passed"] is False
    res = runner.invoke(app, ["export", str(root), "split.salt=x", "--out", str(tmp_path / "b"), "--json"])
    doc = json.loads(res.stdout)
    c = doc["counts"]
    assert (c["read"], c["quarantined"], c["exported"]) == (2, 1, 1), c
    assert c["read"] == c["accepted"] + c["quarantined"]
    assert (c["events_dropped"], c["runs_with_dropped_events"]) == (val["events_dropped"], val["runs_with_dropped_events"])
    assert doc["quarantine"]["by_rule"] == {"events_dropped": 1}
    bundle = Path(doc["path"])
    q = [json.loads(x) for x in (bundle / "quarantine.jsonl").read_text().splitlines()]
    assert [(r["run_id"], r["rules"]) for r in q] == [(gap, ["events_dropped"])]
    assert q[0]["reasons"][0]["where"] == f"{gap}/session.json:-:capture.events_dropped"
    assert q[0]["reasons"][0]["message"].startswith("1 event(s) dropped at capture")
    assert gap not in {r["meta"]["run_id"] for r in _rows(bundle)}
    report = json.loads((bundle / "report.json").read_text())
    assert report["runs"]["events_dropped"] == 1 and report["quarantine"]["by_rule"] == {"events_dropped": 1}
    text = runner.invoke(app, ["export", str(root), "split.salt=x", "--out", str(tmp_path / "c")]).output
    assert "events dropped at capture: 1 in 1 run(s)" in text


def test_allowed_dropped_events_export_the_run_with_its_rows_flagged_and_counted(tmp_path: Path) -> None:
    root, gap = _root_with_a_gap(tmp_path)
    res = runner.invoke(app, ["export", str(root), "split.salt=x", "quality.allow=[unmatched_tool_result,events_dropped]",
                              "--out", str(tmp_path / "b"), "--json"])
    doc = json.loads(res.stdout)
    c = doc["counts"]
    assert (c["read"], c["quarantined"], c["exported"], c["events_dropped"]) == (2, 0, 2, 1), c
    report = json.loads((Path(doc["path"]) / "report.json").read_text())
    assert report["quarantine"]["allowed_by_rule"] == {"events_dropped": 1}
    rows = _rows(Path(doc["path"]))
    flagged = {r["meta"]["run_id"] for r in rows if r["meta"]["labels"].get("events_dropped") == 1}
    assert flagged == {gap}
    assert all("events_dropped" not in r["meta"]["labels"] for r in rows if r["meta"]["run_id"] != gap)


def test_a_root_of_whole_runs_keeps_its_report_keys(tmp_path: Path) -> None:
    record_sample_run(tmp_path / "t")
    doc = json.loads(runner.invoke(app, ["export", str(tmp_path / "t"), "split.salt=x", "--out", str(tmp_path / "b"),
                                         "--json"]).stdout)
    assert "events_dropped" not in doc["counts"] and doc["counts"]["quarantined"] == 0
