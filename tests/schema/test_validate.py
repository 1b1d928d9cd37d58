"""Validator: every lineage rule, drift, thresholds and the ``tracebridge validate`` command."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import record_sample_run
from tracebridge.capture.reader import iter_runs
from tracebridge.schema.validate import Thresholds, check_run, validate_root


def _ev(run, eid, parent, root=False, ts="2026-01-01T00:00:00.000Z", **extra):
    d = {"run_id": run, "step": 0, "event_id": eid, "event_type": "env_observation", "timestamp": ts,
         "parent_event_id": parent, "role": "env", "payload": {"observation": eid}}
    if root:
        d["root"] = True
    d.update(extra)
    return d


def _write(tmp_path, run, events):
    d = tmp_path / run
    d.mkdir(parents=True)
    (d / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    return next(r for r in iter_runs(tmp_path) if r.run_id == run)


def _lineage(chk):
    return [p.message for p in chk.problems if p.kind == "lineage"]


def test_missing_parent(tmp_path):
    chk = check_run(_write(tmp_path, "r", [_ev("r", "r:1", None, True), _ev("r", "r:2", "r:9")]))
    assert chk.lineage_valid_events == 1 and "not found in this run" in _lineage(chk)[0]


def test_parent_in_another_run(tmp_path):
    chk = check_run(_write(tmp_path, "r", [_ev("r", "r:1", None, True), _ev("r", "r:2", "other:1")]))
    assert "belongs to another run ('other')" in _lineage(chk)[0]


def test_two_roots(tmp_path):
    chk = check_run(_write(tmp_path, "r", [_ev("r", "r:1", None, True), _ev("r", "r:2", None, True)]))
    assert chk.lineage_valid_events == 1 and "second root" in _lineage(chk)[0]


def test_root_must_be_marked(tmp_path):
    chk = check_run(_write(tmp_path, "r", [_ev("r", "r:1", None)]))
    msgs = _lineage(chk)
    assert any("root: true" in m for m in msgs) and any("no root event" in m for m in msgs)


def test_only_the_parentless_root_may_say_root(tmp_path):
    chk = check_run(_write(tmp_path, "r", [_ev("r", "r:1", None, True), _ev("r", "r:2", "r:1", True),
                                           _ev("r", "r:3", "r:2")]))
    assert chk.lineage_valid_events == 2 and not chk.lineage_valid
    (p,) = [p for p in chk.problems if p.kind == "lineage"]
    assert (p.line, p.field, p.message) == (2, "root", "root: true on an event with a parent ('r:1')")


def test_duplicate_event_id(tmp_path):
    chk = check_run(_write(tmp_path, "r", [_ev("r", "r:1", None, True), _ev("r", "r:2", "r:1"),
                                           _ev("r", "r:2", "r:1")]))
    p = next(p for p in chk.problems if p.kind == "lineage")
    assert p.line == 3 and p.field == "event_id" and "duplicate id 'r:2' (first on line 2)" in p.message


def test_cycle(tmp_path):
    chk = check_run(_write(tmp_path, "r", [_ev("r", "r:1", None, True), _ev("r", "r:2", "r:3"),
                                           _ev("r", "r:3", "r:2")]))
    assert chk.lineage_valid_events == 1
    assert any("cycle" in m for m in _lineage(chk))


def test_forward_reference_without_cycle(tmp_path):
    chk = check_run(_write(tmp_path, "r", [_ev("r", "r:1", None, True), _ev("r", "r:2", "r:3"),
                                           _ev("r", "r:3", "r:1")]))
    assert any("appears later" in m for m in _lineage(chk))


def test_a_chain_through_a_non_string_parent_is_no_crash(tmp_path):
    """Found by scripts/chaos_fuzz.py --kinds reader: walking a chain into an event whose parent
    is an object raised TypeError (unhashable) instead of reporting the dangling parent."""
    chk = check_run(_write(tmp_path, "r", [_ev("r", "r:1", None, True), _ev("r", "r:2", "r:3"),
                                           _ev("r", "r:3", {"nested": True}), _ev("r", "r:4", ["r:1"])]))
    msgs = [(p.line, p.field, p.message) for p in chk.problems if p.kind == "lineage"]
    assert (3, "parent_event_id", "not a string") in msgs and (4, "parent_event_id", "not a string") in msgs
    assert any(line == 2 and "appears later" in m for line, _, m in msgs) and chk.lineage_valid_events == 1


def test_event_of_other_run_in_file(tmp_path):
    chk = check_run(_write(tmp_path, "r", [_ev("r", "r:1", None, True), _ev("x", "r:2", "r:1")]))
    assert any("event of run 'x'" in m for m in _lineage(chk))


def test_non_monotonic_timestamps_reported(tmp_path):
    chk = check_run(_write(tmp_path, "r", [_ev("r", "r:1", None, True, ts="2026-01-01T00:00:01.000Z"),
                                           _ev("r", "r:2", "r:1", ts="2026-01-01T00:00:00.000Z")]))
    assert [p.line for p in chk.problems if p.kind == "order"] == [2]


def _call(run, eid, parent, call_id, step=1):
    return {**_ev(run, eid, parent), "step": step, "event_type": "worker_tool_call", "role": "worker",
            "payload": {"call_id": call_id, "tool": "search", "args": {}}}


def _result(run, eid, parent, call_id, retry_of=None, step=1, role="worker"):
    return {**_ev(run, eid, parent), "step": step, "event_type": "worker_tool_result", "role": role,
            "payload": {"call_id": call_id, "ok": True, "output": "x", "retry_of": retry_of}}


def test_tool_results_steps_and_roles_are_checked_against_the_run(tmp_path):
    """A result answering no call of the run (or retrying none), a step lower than one before it and a
    worker event under another role are each listed at their line and field (before: all passed)."""
    chk = check_run(_write(tmp_path, "r", [
        _ev("r", "r:1", None, True),
        _call("r", "r:2", "r:1", "c1", step=2),
        _result("r", "r:3", "r:2", "c1", step=2),             # fine
        _result("r", "r:4", "r:2", "c7", step=2),             # no call c7
        _result("r", "r:5", "r:2", "c1", retry_of="c0", step=2),  # retries no call
        _result("r", "r:6", "r:2", "c1", step=1),             # step 2 → 1
        _result("r", "r:7", "r:2", "c1", step=2, role="planner"),  # a worker event under the planner
    ]))
    found = [(p.kind, p.line, p.field) for p in chk.problems if p.kind != "incomplete"]  # no session.json here
    assert found == [("unmatched_tool_result", 4, "payload.call_id"), ("unmatched_tool_result", 5, "payload.retry_of"),
                     ("step_backwards", 6, "step"), ("role_mismatch", 7, "role")], chk.problems
    messages = [p.message for p in chk.problems if p.kind != "incomplete"]
    assert messages[0] == "'c7' names no earlier worker_tool_call of the run"
    assert messages[2] == "step 1 after step 2 (line 2): a run's steps never go back"
    assert messages[3] == "worker_tool_result recorded under role 'planner': a worker event"
    assert chk.schema_valid_events == 7 and chk.lineage_valid_events == 7  # listed, not schema or lineage failures


def test_a_result_before_its_call_is_unmatched(tmp_path):
    chk = check_run(_write(tmp_path, "r", [_ev("r", "r:1", None, True), _result("r", "r:2", "r:1", "c1"),
                                           _call("r", "r:3", "r:1", "c1")]))
    assert [(p.kind, p.line) for p in chk.problems if p.kind != "incomplete"] == [("unmatched_tool_result", 2)]


def test_drift_counted_and_located(tmp_path):
    chk = check_run(_write(tmp_path, "r", [_ev("r", "r:1", None, True, surprise=1),
                                           {**_ev("r", "r:2", "r:1"), "event_type": "brand_new"}]))
    assert chk.drift == {"env_observation.surprise": 1, "event_type=brand_new": 1}
    assert {str(p).split(": ")[0].endswith("events.jsonl:1") for p in chk.problems if p.field == "surprise"} == {True}


def test_session_drift_and_version(tmp_path):
    run_id = record_sample_run(tmp_path)
    path = tmp_path / run_id / "session.json"
    sess = json.loads(path.read_text())
    sess["schema_version"] = "3.0"
    sess["goal"]["mood"] = "x"
    path.write_text(json.dumps(sess))
    chk = check_run(next(iter_runs(tmp_path)))
    assert not chk.schema_valid
    assert chk.drift == {"schema_version=3.0": 1, "goal.mood": 1}


def test_thresholds(tmp_path):
    record_sample_run(tmp_path / "t")
    _write(tmp_path / "t", "zz", [_ev("zz", "zz:1", None, True), _ev("zz", "zz:2", "zz:7")])
    rep = validate_root(tmp_path / "t")
    assert rep.runs_total == 2 and rep.runs_incomplete == 1
    assert rep.lineage_valid_pct == pytest.approx(100 * 16 / 17)
    assert not rep.passed and "lineage-valid" in rep.failures()[0]
    assert validate_root(tmp_path / "t", Thresholds(min_lineage_valid_pct=90)).passed
    assert not validate_root(tmp_path / "t", Thresholds(min_lineage_valid_pct=90, max_incomplete_pct=10)).passed


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "tracebridge.cli.__main__", *args], capture_output=True, text=True,
                          check=False)  # the tests assert the exit codes


def test_cli_validate_json_and_exit_codes(tmp_path):
    record_sample_run(tmp_path / "ok")
    res = _cli("validate", str(tmp_path / "ok"), "--json")
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["passed"] and out["runs_total"] == 1 and out["schema_valid_pct"] == 100.0
    _write(tmp_path / "ok", "bad", [_ev("bad", "bad:1", None, True), _ev("bad", "bad:2", "bad:5")])
    res = _cli("validate", str(tmp_path / "ok"))
    assert res.returncode == 1
    assert "bad/events.jsonl:2: parent_event_id: parent 'bad:5' not found in this run" in res.stdout
    res = _cli("validate", str(tmp_path / "ok"), "--json")  # problems and their counts by kind, as JSON
    assert res.returncode == 1, res.stderr
    assert json.loads(res.stdout)["problems_by_kind"] == {"lineage": 1, "incomplete": 1}
    assert _cli("validate", str(tmp_path / "nope")).returncode == 2


def test_abandoned_runs_fail_while_fresh_incomplete_ones_pass(tmp_path):
    """Seed 004 AC1 (every run produces its session.json): a run that stopped writing without
    closing fails validation; one still being written is only counted."""
    import os
    import time

    from typer.testing import CliRunner

    import tracebridge.cli  # noqa: F401 - registers every command module
    from tracebridge.cli.app import app

    root = tmp_path / "t"
    record_sample_run(root)
    _write(root, "live", [_ev("live", "live:1", None, True)])
    rep = validate_root(root)
    assert rep.runs_incomplete == 1 and rep.runs_abandoned == 0 and rep.passed, rep.failures()
    hours_ago = time.time() - 2 * 3600
    os.utime(root / "live" / "events.jsonl", (hours_ago, hours_ago))
    rep = validate_root(root)
    assert rep.runs_abandoned == 1 and rep.abandoned_pct == 50.0 and not rep.passed
    assert rep.failures() == ["abandoned 1 run(s) (50.00% > 0.0%): no session.json and no event for over 3600 s"]
    assert any("live" in p and "run abandoned (crashed without closing)" in p for p in rep.problems)
    assert rep.problems_by_kind["abandoned"] == 1
    assert validate_root(root, Thresholds(stale_after_s=3 * 3600)).passed  # idle 2 h < 3 h: still running
    assert validate_root(root, Thresholds(max_abandoned_pct=50)).passed
    res = CliRunner().invoke(app, ["validate", str(root), "--json"])
    assert res.exit_code == 1 and json.loads(res.stdout)["runs_abandoned"] == 1
    res = CliRunner().invoke(app, ["validate", str(root), "--stale-after", "10800", "--json"])
    assert res.exit_code == 0, res.output


def test_events_a_fail_open_recorder_dropped_are_reported_and_fail_the_cli(tmp_path):
    """A tool error kind outside the taxonomy is dropped by the recorder (fail-open); the events file
    that is left validates, so validate used to say PASS at 100% for a run that lost its tool result."""
    from typer.testing import CliRunner

    import tracebridge.cli  # noqa: F401 - registers every command module
    from tests.conftest import MODEL_STACK
    from tracebridge.capture.recorder import Recorder
    from tracebridge.cli.app import app

    root = tmp_path / "t"
    record_sample_run(root)
    with Recorder(root, goal="g", model_stack=MODEL_STACK, runtime_config={"max_steps": 1}) as run:
        run.emit("planner_input", role="planner", payload={"goal": "g"})
        run.emit("worker_tool_call", role="worker", payload={"call_id": "c1", "tool": "calc", "args": {}})
        run.emit("worker_tool_result", role="worker", payload={"call_id": "c1", "ok": False, "error": {
            "kind": "ZeroDivisionError", "message": "division by zero"}})
        run.emit("episode_end", role="orchestrator", payload={"success": False})
    rep = validate_root(root)
    assert rep.schema_valid_pct == 100.0 and rep.passed  # the library counts; judging is opt-in
    assert (rep.events_dropped, rep.runs_with_dropped_events, rep.problems_by_kind["capture"]) == (1, 1, 1)
    assert any(f"{run.run_id}/session.json:-: capture.events_dropped: 1 event(s) dropped" in p for p in rep.problems)
    assert validate_root(root, Thresholds(max_events_dropped=0)).failures() == [
        "1 event(s) dropped at capture in 1 run(s) (> 0): the recorder logged why; those runs have gaps"]
    res = CliRunner().invoke(app, ["validate", str(root), "--json"])
    assert res.exit_code == 1 and json.loads(res.stdout)["events_dropped"] == 1
    assert CliRunner().invoke(app, ["validate", str(root), "--max-dropped-events", "-1"]).exit_code == 0


def test_a_copied_run_folder_is_one_problem_in_the_text_output_not_one_line_per_event(tmp_path):
    """A run folder copied under another name has the same run_id problem on every event: the text
    output listed one identical line per event; now the first, then the range, and the session's
    problem says what happened. --json still lists every problem."""
    import shutil

    from typer.testing import CliRunner

    import tracebridge.cli  # noqa: F401 - registers every command module
    from tracebridge.cli.app import app

    root = tmp_path / "t"
    run_id = record_sample_run(root)
    shutil.copytree(root / run_id, root / "copy-of-run")
    n = len((root / "copy-of-run" / "events.jsonl").read_text().splitlines())
    res = CliRunner().invoke(app, ["validate", str(root)])
    lines = [x for x in res.output.splitlines() if "copy-of-run/" in x]
    assert res.exit_code == 1 and len(lines) == 3, res.output
    assert "copied or renamed" in lines[0]
    assert lines[1].endswith(f"events.jsonl:1: run_id: event of run '{run_id}' in run 'copy-of-run'")
    assert lines[2].endswith(f"events.jsonl:2-{n}: the same ({n - 1} more)")
    doc = json.loads(CliRunner().invoke(app, ["validate", str(root), "--json"]).stdout)
    assert sum("copy-of-run/events.jsonl" in p for p in doc["problems"]) == n


@pytest.mark.parametrize("value, message", [
    (None, "must be a string naming the event type, got NoneType None"),
    (5, "must be a string naming the event type, got int 5"),
    (["x"], "must be a string naming the event type, got list ['x']"),
])
def test_an_event_type_of_the_wrong_type_is_a_schema_problem_not_drift(tmp_path, value, message):
    chk = check_run(_write(tmp_path, "r", [_ev("r", "r:1", None, True), {**_ev("r", "r:2", "r:1"), "event_type": value}]))
    assert [(p.field, p.message, p.kind) for p in chk.problems if p.line == 2] == [("event_type", message, "schema")]
    assert chk.drift == {}


def test_a_missing_event_type_is_named_as_the_field(tmp_path):
    # was "<root>: Unable to extract tag using discriminator 'event_type'" (pydantic's words, no field)
    ev = _ev("r", "r:2", "r:1")
    del ev["event_type"]
    chk = check_run(_write(tmp_path, "r", [_ev("r", "r:1", None, True), ev]))
    assert [(p.field, p.message, p.kind) for p in chk.problems if p.line == 2] == [
        ("event_type", "Field required (names the event's type)", "schema")]


def test_a_closed_runs_torn_last_line_fails_as_the_export_quarantines_it_a_live_runs_is_only_counted(tmp_path):
    """The export quarantines a complete run whose last line is torn (``torn_tail``): validate fails it with
    that rule's name at its file and line; in a run still being written it is a write in progress."""
    from typer.testing import CliRunner

    import tracebridge.cli  # noqa: F401 - registers every command module
    from tracebridge.cli.app import app

    root = tmp_path / "t"
    record_sample_run(root)
    _write(root, "live", [_ev("live", "live:1", None, True)])
    with open(root / "live" / "events.jsonl", "a") as f:
        f.write('{"run_id": "live", "ev')
    rep = validate_root(root)
    assert rep.passed and rep.torn_tails == 1, rep.failures()
    assert any("live/events.jsonl:2" in p and "writer stopped mid-write" in p for p in rep.problems)
    closed = next(p for p in root.iterdir() if (p / "session.json").exists())
    lines = (closed / "events.jsonl").read_text().splitlines()
    with open(closed / "events.jsonl", "a") as f:
        f.write('{"run_id": "x", "ev')
    rep = validate_root(root)
    assert not rep.passed and rep.torn_tails == 2 and rep.runs_schema_valid == 0
    assert any(f"events.jsonl:{len(lines) + 1}" in p and "torn_tail" in p and "closed run" in p for p in rep.problems)
    res = CliRunner().invoke(app, ["validate", str(root), "--json"])
    assert res.exit_code == 1 and json.loads(res.stdout)["torn_tails"] == 2


def test_validate_json_lists_each_problem_structured_beside_its_line(tmp_path):
    """``--json`` gave problems only as ``file:line: field: message`` strings, which a tool had to parse back (and a
    file name or message holding ``: `` made that ambiguous); each now also comes as {file, line, field, code,
    message}, in the same order, under the same cap; the strings stay."""
    from typer.testing import CliRunner

    from tracebridge.cli import app

    root = tmp_path / "t: x"  # a folder name holding ": " (the strings cannot be split back)
    record_sample_run(root)
    _write(root, "bad", [_ev("bad", "bad:1", None, True), _ev("bad", "bad:2", "bad:5", extra_field=1)])
    res = CliRunner().invoke(app, ["validate", str(root), "--json"])
    assert res.exit_code == 1, res.output
    doc = json.loads(res.stdout)
    entries = doc["problem_entries"]
    assert len(entries) == len(doc["problems"]) == doc["problems_total"] == 3
    assert [f"{e['file']}:{'-' if e['line'] is None else e['line']}: {e['field']}: {e['message']}"
            for e in entries] == doc["problems"]
    events = str(root / "bad" / "events.jsonl")
    assert {"file": events, "line": 2, "field": "parent_event_id", "code": "lineage",
            "message": "parent 'bad:5' not found in this run"} in entries
    assert {"file": events, "line": 2, "field": "extra_field", "code": "drift",
            "message": "unknown field (schema drift)"} in entries
    assert {"file": str(root / "bad"), "line": None, "field": "session.json", "code": "incomplete",
            "message": "missing: run is incomplete (still running or crashed)"} in entries
    assert sorted(e["code"] for e in entries) == sorted(k for k, n in doc["problems_by_kind"].items() for _ in range(n))
    capped = json.loads(CliRunner().invoke(app, ["validate", str(root), "--json", "--max-problems", "1"]).stdout)
    assert len(capped["problem_entries"]) == len(capped["problems"]) == 1 and capped["problems_total"] == 3
