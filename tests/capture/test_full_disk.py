"""A real full disk under the recorder: a small tmpfs mounted by the test (root only)."""

from __future__ import annotations

import errno
import json

import pytest

from tracebridge.capture.recorder import Recorder
from tracebridge.capture.writer import EventWriter
from tracebridge.testing.procs import small_tmpfs


@pytest.fixture
def small_disk():
    with small_tmpfs("32k") as mnt:
        yield mnt


def test_full_disk_never_reaches_the_agent_and_no_line_is_torn_or_glued(small_disk):
    stack = {r: {"model": "m"} for r in ("planner", "worker", "verifier")}
    with Recorder(small_disk, goal="g", model_stack=stack, runtime_config={"max_steps": 1}) as run:
        for i in range(800):  # sizes vary, so small lines still fit after a big one hit the limit
            run.emit("env_observation", role="env", payload={"observation": "x" * (900 if i % 3 else 20)})
    lines = (small_disk / run.run_id / "events.jsonl").read_bytes().split(b"\n")
    assert lines[-1] == b""
    assert [json.loads(x)["payload"] for x in lines[1:-1]]  # all parse: nothing torn, nothing glued
    assert run.stats.events_dropped > 0 and run.stats.events_written == len(lines) - 1


def test_short_write_is_cut_back_so_the_next_line_starts_clean(small_disk):
    w = EventWriter(small_disk / "events.jsonl", fsync_interval_s=None)
    big = b"y" * 4096
    with pytest.raises(OSError):
        while True:
            w.write_line(big)
    size = (small_disk / "events.jsonl").stat().st_size
    assert size % (len(big) + 1) == 0  # only whole lines remain
    w.close()


def test_session_json_that_does_not_fit_leaves_no_partial_file(small_disk):
    stack = {r: {"model": "m"} for r in ("planner", "worker", "verifier")}
    with Recorder(small_disk, goal="g", model_stack=stack, runtime_config={"max_steps": 1},
                  labels={"notes": "z" * 40000}) as run:  # the events fit, the session does not
        run.emit("planner_input", role="planner", payload={"goal": "g"})
    assert run.stats.errors == 1
    assert sorted(p.name for p in run.run_dir.iterdir()) == ["events.jsonl"]  # no .session.json.tmp.*


def test_a_full_disk_is_named_with_its_errno_and_the_file(small_disk):
    """Before, a line cut by the full disk raised OSError("...: short write (59 of 299 bytes)"): no errno, so
    callers (the feedback harvest, the importers) could not say the disk was full."""
    path = small_disk / "events.jsonl"
    w = EventWriter(path, fsync_interval_s=None)
    try:
        with pytest.raises(OSError) as err:
            while True:
                w.write_line(b"y" * 3000)
    finally:
        w.close()  # an open file would keep the tmpfs busy at unmount
    assert err.value.errno == errno.ENOSPC and err.value.filename == str(path), err.value
    assert "No space left on device" in str(err.value) and "cut part removed" in str(err.value)
    assert path.stat().st_size % 3001 == 0  # only whole lines remain


def test_session_json_lost_to_a_full_disk_is_logged_after_earlier_errors(small_disk, caplog):
    """The first failure is logged and later ones only counted; but a session.json that cannot be written leaves
    the run incomplete for good (validate: "still running", then abandoned), and it was not logged at all."""
    stack = {r: {"model": "m"} for r in ("planner", "worker", "verifier")}
    with Recorder(small_disk, goal="g", model_stack=stack, runtime_config={"max_steps": 1}) as run:
        for _ in range(60):  # the disk fills: the first dropped event is logged
            run.emit("env_observation", role="env", payload={"observation": "x" * 900})
    assert run.stats.events_dropped > 1
    assert not (run.run_dir / "session.json").exists()
    logged = [r.getMessage() for r in caplog.records if r.name == "tracebridge.capture.recorder"]
    assert len(logged) == 2 and "capture failed at env_observation" in logged[0], logged
    assert "capture failed at session" in logged[1] and "No space left on device" in logged[1], logged
    assert "session.json" in logged[1]
