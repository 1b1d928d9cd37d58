"""``export --workers N`` SIGKILLed mid-export: its workers end with it (before, both stayed for good,
asleep on a pipe nobody wrote), and nothing under the bundle's name is left; the next export writes
the bundle an uninterrupted export writes."""

from __future__ import annotations

import signal
import time

from tracebridge.config import load_config
from tracebridge.export.config import ExportConfig
from tracebridge.export.pipeline import export_traces
from tracebridge.testing.procs import children, cli, wait_gone


def test_workers_of_a_killed_export_end_with_it(sim_traces, tmp_path):
    out = tmp_path / "bundles"
    p = cli("export", str(sim_traces), "--out", str(out), "--workers", "2", "--json")
    workers: list[int] = []
    deadline = time.monotonic() + 30
    while len(workers) < 2 and p.poll() is None and time.monotonic() < deadline:
        workers = children(p.pid)
        time.sleep(0.002)
    assert len(workers) == 2, "the export ended before its workers could be seen"
    p.send_signal(signal.SIGKILL)
    p.wait(10)
    assert not wait_gone(workers), "workers outlived the killed export"
    assert [
        d.name for d in out.iterdir() if not d.name.startswith(".")
    ] == []  # no bundle under its final name
    cfg = load_config(ExportConfig, None, [])
    again = export_traces(sim_traces, out, cfg, workers=2)
    one = export_traces(sim_traces, tmp_path / "one", cfg)
    assert again.manifest.bundle_id == one.manifest.bundle_id
