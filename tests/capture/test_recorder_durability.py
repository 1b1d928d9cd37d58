"""The recorder's durability work and its lock: an interval fsync runs outside the lock other threads' emits
wait on, and a closed run is still on disk (its events file synced after its last line, then session.json)."""

from __future__ import annotations

import os
import threading
import time

from tests.capture.test_recorder_misuse import _check, _events, _rec, _session
from tracebridge.capture import writer as writer_module


def _events_file(fd: int) -> bool:
    return os.readlink(f"/proc/self/fd/{fd}").endswith("events.jsonl")


def test_an_interval_fsync_does_not_hold_up_other_threads_emits(tmp_path, monkeypatch):
    """A slow disk: the first sync of the events file lasts until the other thread's emit has returned (5 s at
    most). Before, the recorder synced while it held the lock every emit takes, so the other thread waited the
    whole 5 s for a disk write that was not its own."""
    real = os.fsync
    in_sync, other_done, slow = threading.Event(), threading.Event(), []

    def fsync(fd):
        real(fd)
        if not slow and _events_file(fd):
            slow.append(fd)
            in_sync.set()
            other_done.wait(5)

    monkeypatch.setattr(writer_module.os, "fsync", fsync)
    with _rec(tmp_path, fsync_interval_s=0) as run:
        first = threading.Thread(target=run.emit, args=("planner_input",),
                                 kwargs={"role": "planner", "payload": {"goal": "g"}})
        first.start()
        assert in_sync.wait(5), "the first emit never synced"
        t0 = time.monotonic()
        run.emit("env_observation", role="env", payload={"observation": "meanwhile"})
        waited = time.monotonic() - t0
        other_done.set()
        first.join(10)
    assert waited < 2.5, f"an emit waited {waited:.1f} s for another thread's fsync"
    assert [e["event_type"] for e in _events(run)] == ["planner_input", "env_observation"]
    assert _session(run)["capture"]["errors"] == 0
    _check(tmp_path)


def test_a_closed_run_is_on_disk_and_no_descriptor_is_left_open(tmp_path, monkeypatch):
    """Whatever the interval, the events file is synced after its last line before session.json is written,
    by close(); the descriptors the out-of-lock syncs use are closed again (threads emitting at once)."""
    real, synced = os.fsync, []

    def fsync(fd):
        real(fd)
        synced.append(("events", os.fstat(fd).st_size) if _events_file(fd) else ("other", 0))

    monkeypatch.setattr(writer_module.os, "fsync", fsync)
    open_fds = len(os.listdir("/proc/self/fd"))
    for interval in (None, 0, 1.0):
        synced.clear()
        with _rec(tmp_path / str(interval), fsync_interval_s=interval) as run:
            run.emit("planner_input", role="planner", payload={"goal": "g"})
            pool = [threading.Thread(target=lambda k=k: [run.emit("env_observation", role="env",
                                                                  payload={"observation": [k, i]})
                                                         for i in range(50)]) for k in range(4)]
            for t in pool:
                t.start()
            for t in pool:
                t.join()
        size = (run.run_dir / "events.jsonl").stat().st_size
        last_events = max(i for i, (what, _) in enumerate(synced) if what == "events")
        assert synced[last_events] == ("events", size), interval  # synced with every line in it
        assert synced[last_events + 1:] and all(w == "other" for w, _ in synced[last_events + 1:])  # session.json
        assert len(_events(run)) == 201 and _session(run)["capture"]["events_written"] == 201
        if interval == 0:
            assert sum(w == "events" for w, _ in synced) >= 201  # each emit synced its line
    assert len(os.listdir("/proc/self/fd")) == open_fds


def test_without_a_spare_descriptor_the_sync_runs_in_the_emit_and_its_failure_is_still_counted(tmp_path, monkeypatch):
    """Out of file descriptors, the interval sync cannot get one of its own to run out of the lock: it runs in the
    emit, as before, and a failure of it is an error of the run (the line is written: no event dropped)."""
    import errno

    real = os.fsync

    def dup(fd):
        raise OSError(errno.EMFILE, "Too many open files")

    def fsync(fd):
        if _events_file(fd):
            raise OSError(errno.EIO, "fsync failed")
        real(fd)

    monkeypatch.setattr(writer_module.os, "dup", dup)
    monkeypatch.setattr(writer_module.os, "fsync", fsync)
    with _rec(tmp_path, fsync_interval_s=0) as run:
        ids = [run.emit("planner_input", role="planner", payload={"goal": "g"})]
        ids += [run.emit("env_observation", role="env", payload={"observation": i}) for i in range(3)]
    assert [e["event_id"] for e in _events(run)] == ids
    capture = _session(run)["capture"]
    assert capture["events_written"] == 4 and capture["events_dropped"] == 0
    assert capture["errors"] == 2  # the first interval sync (then backed off) and the one at close
