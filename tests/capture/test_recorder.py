"""Recorder: lineage, hashes, session.json, crash safety, concurrency and fail-open."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import MODEL_STACK, record_sample_run
from tracebridge.capture.reader import iter_lines, iter_runs
from tracebridge.capture.recorder import CaptureError, Recorder, make_goal
from tracebridge.schema.events import EVENT_TYPES
from tracebridge.schema.validate import check_run, validate_root


def test_sample_run_is_valid_and_complete(tmp_path):
    run_id = record_sample_run(tmp_path)
    chk = check_run(next(iter_runs(tmp_path)))
    assert chk.run_id == run_id and chk.complete and chk.schema_valid and chk.lineage_valid
    assert chk.problems == []
    types = {json.loads(l)["event_type"] for l in (tmp_path / run_id / "events.jsonl").read_text().splitlines()}
    assert types == set(EVENT_TYPES)


def test_session_summary_and_hashes(tmp_path):
    run_id = record_sample_run(tmp_path, tools=[{"name": "read_file"}], prompts={"planner": "v1"})
    sess = json.loads((tmp_path / run_id / "session.json").read_text())
    assert sess["schema_version"] == "2.0"
    assert sess["summary"]["success"] is True
    assert sess["summary"]["tokens"] == 14 and sess["summary"]["cost_usd"] == pytest.approx(0.001)
    assert sess["summary"]["steps"] == 2
    assert sess["capture"] == {"events_written": 15, "events_dropped": 0, "errors": 0, "nonfinite_values": 0}
    assert len(sess["hashes"]["toolset_hash"]) == 64
    other = record_sample_run(tmp_path, tools=[{"name": "write_file"}], prompts={"planner": "v1"})
    sess2 = json.loads((tmp_path / other / "session.json").read_text())
    assert sess2["hashes"]["toolset_hash"] != sess["hashes"]["toolset_hash"]
    assert sess2["hashes"]["prompt_hash"] == sess["hashes"]["prompt_hash"]
    assert sess2["hashes"]["config_hash"] == sess["hashes"]["config_hash"]


def test_llm_call_block_hashes_prompt_and_config(tmp_path):
    with Recorder(tmp_path, goal="g", model_stack=MODEL_STACK, runtime_config={"max_steps": 1}, strict=True) as run:
        a = run.llm_call("m", "hello", params={"t": 0})
        b = run.llm_call("m", "hello", params={"t": 1})
        c = run.llm_call("m", "bye", params={"t": 0})
    assert a["prompt_hash"] == b["prompt_hash"] != c["prompt_hash"]
    assert a["config_hash"] != b["config_hash"] and a["config_hash"] == c["config_hash"]
    assert a["rendered_prompt"] == "hello"


def test_goal_hash_ignores_case_and_spacing():
    assert make_goal("Count  lines", "fs").goal_hash == make_goal("count lines", "fs").goal_hash
    assert make_goal("count lines", "fs").goal_hash != make_goal("count lines", "sql").goal_hash


def test_goal_as_text_and_family_gets_its_hash(tmp_path):
    """A user naming the goal family (the export splits by it) need not compute goal_hash."""
    with Recorder(tmp_path, goal={"text": "Count  lines", "family": "fs"}, model_stack=MODEL_STACK,
                  runtime_config={"max_steps": 1}, strict=True) as run:
        run.emit("planner_input", role="planner", payload={"goal": "count lines"})
    goal = json.loads((run.run_dir / "session.json").read_text())["goal"]
    assert goal == {"text": "Count  lines", "family": "fs", "goal_hash": make_goal("count lines", "fs").goal_hash}


def test_events_file_is_append_only_and_never_rewritten(tmp_path):
    rec = Recorder(tmp_path, goal="g", model_stack=MODEL_STACK, runtime_config={"max_steps": 1}, strict=True)
    rec.open()
    rec.emit("planner_input", role="planner", payload={"goal": "g"})
    path = rec.run_dir / "events.jsonl"
    first = path.read_bytes()
    ino = os.stat(path).st_ino
    rec.emit("episode_end", role="orchestrator", payload={"success": False})
    rec.close()
    assert path.read_bytes().startswith(first) and os.stat(path).st_ino == ino
    with pytest.raises(CaptureError):  # a run directory is never reopened
        Recorder(tmp_path, goal="g", model_stack=MODEL_STACK, runtime_config={"max_steps": 1},
                 run_id=rec.run_id, strict=True).open()


def test_strict_mode_raises_on_bad_payload(tmp_path):
    with (pytest.raises(CaptureError, match="verdict"),
          Recorder(tmp_path, goal="g", model_stack=MODEL_STACK, runtime_config={"max_steps": 1}, strict=True) as run):
        run.emit("planner_input", role="planner", payload={"goal": "g"})
        run.emit("verifier_output", role="verifier", payload={"verdict": "maybe"})


def test_fail_open_bad_payload_keeps_lineage(tmp_path, caplog):
    with Recorder(tmp_path, goal="g", model_stack=MODEL_STACK, runtime_config={"max_steps": 1}) as run:
        root = run.emit("planner_input", role="planner", payload={"goal": "g"})
        bad = run.emit("verifier_output", role="verifier", payload={"verdict": "maybe"})
        run.emit("verifier_output", role="verifier", parent=bad, payload={"verdict": "end"})
        run.emit("verifier_output", role="verifier", payload={"verdict": "nope"})
    assert run.stats.events_dropped == 2 and run.stats.errors == 2
    assert sum("capture failed" in r.message for r in caplog.records) == 1  # logged once
    chk = check_run(next(iter_runs(tmp_path)))
    assert chk.lineage_valid and chk.schema_valid and chk.events == 2
    line2 = json.loads((run.run_dir / "events.jsonl").read_text().splitlines()[1])
    assert line2["parent_event_id"] == root
    assert json.loads((run.run_dir / "session.json").read_text())["capture"]["events_dropped"] == 2


def test_fail_open_oserror_inside_writer_is_counted(tmp_path, monkeypatch):
    from tracebridge.capture import writer

    with Recorder(tmp_path, goal="g", model_stack=MODEL_STACK, runtime_config={"max_steps": 1}) as run:
        run.emit("planner_input", role="planner", payload={"goal": "g"})

        def enospc(fd, data):
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(writer.os, "write", enospc)
        for _ in range(5):
            assert run.emit("env_observation", role="env", payload={"observation": 1})
        monkeypatch.undo()
    assert run.stats.events_written == 1 and run.stats.events_dropped == 5 and run.stats.errors >= 5


def test_fail_open_unwritable_root(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with Recorder(blocker, goal="g", model_stack=MODEL_STACK, runtime_config={"max_steps": 1}) as run:
        run.emit("planner_input", role="planner", payload={"goal": "g"})
    assert run.stats.errors >= 1 and run.stats.events_written == 0


def test_exception_in_agent_is_recorded_and_reraised(tmp_path):
    with (pytest.raises(ZeroDivisionError),
          Recorder(tmp_path, goal="g", model_stack=MODEL_STACK, runtime_config={"max_steps": 1}, strict=True) as run):
        run.emit("planner_input", role="planner", payload={"goal": "g"})
        _ = 1 / 0  # the agent's own error, raised inside the run
    error, end = [json.loads(x) for x in (run.run_dir / "events.jsonl").read_text().splitlines()[-2:]]
    assert error["event_type"] == "episode_error" and error["payload"]["kind"] == "ZeroDivisionError"
    assert end["event_type"] == "episode_end" and end["payload"]["success"] is False
    assert (run.run_dir / "session.json").exists()


WRITER_SCRIPT = textwrap.dedent("""
    import sys, time
    from tracebridge.capture.recorder import Recorder
    stack = {r: {"model": "m"} for r in ("planner", "worker", "verifier")}
    root, run_id, n, pause = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    with Recorder(root, goal="g", model_stack=stack, runtime_config={"max_steps": 1}, run_id=run_id,
                  strict=True, fsync_interval_s=None) as run:
        run.emit("planner_input", role="planner", payload={"goal": "g"})
        for i in range(n):
            run.emit("env_observation", role="env", payload={"observation": {"i": i, "pad": "x" * 200}})
            print(i, flush=True)
            if pause:
                time.sleep(pause)
        run.emit("episode_end", role="orchestrator", payload={"success": True})
""")


def _spawn(tmp_path: Path, run_id: str, n: int, pause: float) -> subprocess.Popen:
    script = tmp_path / "writer.py"
    script.write_text(WRITER_SCRIPT)
    return subprocess.Popen([sys.executable, str(script), str(tmp_path / "traces"), run_id, str(n), str(pause)],
                            stdout=subprocess.PIPE, text=True, cwd=Path(__file__).parents[2])


def test_sigkill_mid_run_leaves_flushed_lines_readable(tmp_path):
    proc = _spawn(tmp_path, "killed", 100000, 0.001)
    acked = -1
    for line in proc.stdout:  # wait until at least 50 events were acknowledged
        acked = int(line)
        if acked >= 50:
            break
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    run_dir = tmp_path / "traces" / "killed"
    lines = list(iter_lines(run_dir / "events.jsonl"))
    good = [l for l in lines if l.error is None]
    assert len(good) >= acked + 2  # root + every acknowledged event
    assert [l.obj["payload"]["observation"]["i"] for l in good[1:]] == list(range(len(good) - 1))
    assert sum(l.torn for l in lines) <= 1 and all(l.torn for l in lines if l.error)
    rep = validate_root(tmp_path / "traces")
    assert rep.runs_incomplete == 1 and rep.lineage_valid_pct == 100.0


def test_torn_tail_is_reported_and_not_fatal_to_the_lines_before_it(tmp_path):
    """The intact lines still count (lineage valid); a closed run with a torn last line is no schema-valid
    run, as the export quarantines it (torn_tail)."""
    run_id = record_sample_run(tmp_path)
    with open(tmp_path / run_id / "events.jsonl", "ab") as fh:
        fh.write(b'{"run_id": "x", "ste')
    chk = check_run(next(iter_runs(tmp_path)))
    assert chk.torn_tail and chk.lineage_valid and chk.events == 15 and not chk.schema_valid
    assert any(p.kind == "torn" and p.line == 16 for p in chk.problems)


def test_two_processes_write_different_runs_at_once(tmp_path):
    procs = [_spawn(tmp_path, f"run{i}", 400, 0) for i in range(2)]
    for p in procs:
        p.communicate(timeout=120)
        assert p.returncode == 0
    rep = validate_root(tmp_path / "traces")
    assert rep.runs_total == 2 and rep.runs_complete == 2
    assert rep.schema_valid_pct == 100.0 and rep.lineage_valid_pct == 100.0
    for i in range(2):
        objs = [l.obj for l in iter_lines(tmp_path / "traces" / f"run{i}" / "events.jsonl")]
        assert len(objs) == 402 and {o["run_id"] for o in objs} == {f"run{i}"}


def test_recorder_api_is_importable_from_the_package():
    """``from tracebridge.capture import Recorder`` gives what ``tracebridge.capture.recorder`` defines."""
    from tracebridge import capture
    from tracebridge.capture import recorder

    assert all(getattr(capture, name) is getattr(recorder, name) for name in capture.__all__)
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        capture.Nope  # noqa: B018 - the lookup itself is the test


def test_new_run_ids_hold_64_random_bits_and_runs_with_the_older_32_bit_ids_still_validate(tmp_path):
    """Run ids were ``<time>-<8 hex>``: 32 random bits, so runs a fleet starts in one second collided with even
    odds at ~77k runs (two runs in one folder). New ids have 16 hex digits; runs written with the old ones are
    read and validated as before."""
    import re

    from tracebridge.capture.recorder import new_run_id

    ids = {new_run_id() for _ in range(2000)}
    assert len(ids) == 2000 and all(re.fullmatch(r"\d{8}T\d{6}-[0-9a-f]{16}", i) for i in ids), sorted(ids)[:3]
    new = record_sample_run(tmp_path)
    assert re.fullmatch(r"\d{8}T\d{6}-[0-9a-f]{16}", new)
    old = record_sample_run(tmp_path, run_id="20250101T000000-0a1b2c3d")  # as a recorder before wrote it
    report = validate_root(tmp_path)
    assert report.passed and report.runs_total == 2 and report.runs_schema_valid == 2, report.problems
    assert {c.run_id for c in map(check_run, iter_runs(tmp_path)) if c.schema_valid and c.lineage_valid} == {new, old}
