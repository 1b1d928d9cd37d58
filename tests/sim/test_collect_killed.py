"""``collect`` (workers=2, a forkserver pool) SIGKILLed mid-collection: its fork server and workers end
with it. Before, they went on writing runs into the trace root after the kill (and stayed): a folder
the user had just cleared to collect again filled with the dead collection's runs."""

from __future__ import annotations

import signal
import time

from tracebridge.testing.procs import ROOT, cli, descendants, wait_gone


def test_a_killed_collection_stops_writing_runs(tmp_path):
    out = tmp_path / "traces"
    p = cli(
        "collect",
        str(ROOT / "configs/collect/smoke.yaml"),
        "workers=2",
        "chunk=2",
        "--out",
        str(out),
    )
    deadline = time.monotonic() + 60
    while p.poll() is None and time.monotonic() < deadline:
        if out.is_dir() and sum(1 for d in out.iterdir() if (d / "session.json").is_file()) >= 2:
            break
        time.sleep(0.005)
    kids = descendants(p.pid)
    assert p.poll() is None and len(kids) >= 3, (
        "the collection ended before it could be killed midway"
    )
    p.send_signal(signal.SIGKILL)
    p.wait(10)
    assert not wait_gone(kids), "the collection's processes outlived it"
    runs = sorted(d.name for d in out.iterdir())
    time.sleep(0.5)
    assert sorted(d.name for d in out.iterdir()) == runs  # nothing writes into the root any more
