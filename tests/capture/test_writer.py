"""EventWriter: a failed interval fsync after a whole write is reported, not raised, and backed off."""

from __future__ import annotations

import errno

from tracebridge.capture import writer as writer_module
from tracebridge.capture.writer import EventWriter


def test_failed_interval_fsync_keeps_the_line_reports_the_error_and_backs_off(tmp_path, monkeypatch):
    calls = []

    def fsync(fd):
        calls.append(fd)
        raise OSError(errno.EIO, "fsync failed")

    w = EventWriter(tmp_path / "events.jsonl", fsync_interval_s=0)
    monkeypatch.setattr(writer_module.os, "fsync", fsync)
    for i in range(3):
        w.write_line(b'{"i": %d}' % i)  # no OSError: the line reached the kernel
    assert w.lines == 3 and len(calls) == 1  # retried only after the back-off, not on every line
    assert isinstance(w.sync_error, OSError) and w.sync_error.errno == errno.EIO
    monkeypatch.setattr(writer_module.os, "fsync", lambda fd: None)
    w._last_sync -= 1.0  # the back-off has passed: a sync that works resets the interval
    w.sync_error = None
    w.write_line(b'{"i": 3}')
    assert w.sync_error is None and w._sync_wait == 0
    w.close()
    assert (tmp_path / "events.jsonl").read_bytes().count(b"\n") == 4
