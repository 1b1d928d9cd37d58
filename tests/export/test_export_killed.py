"""``export --workers N`` SIGKILLed mid-export: its workers end with it (before, both stayed for good,
asleep on a pipe nobody wrote), and nothing under the bundle's name is left; the next export writes
the bundle an uninterrupted export writes."""

from __future__ import annotations

import json
import os
import signal
import socket
import time
from pathlib import Path

from tracebridge.config import load_config
from tracebridge.export.config import ExportConfig
from tracebridge.export.pipeline import export_traces
from tracebridge.testing.procs import cli, kill_once_workers_run, run_cli, wait_gone


def test_workers_of_a_killed_export_end_with_it(sim_traces, tmp_path):
    out = tmp_path / "bundles"
    p = cli("export", str(sim_traces), "--out", str(out), "--workers", "2", "--json")
    workers = kill_once_workers_run(p, 2, "export")
    assert not wait_gone(workers), "workers outlived the killed export"
    assert [
        d.name for d in out.iterdir() if not d.name.startswith(".")
    ] == []  # no bundle under its final name
    cfg = load_config(ExportConfig, None, [])
    again = export_traces(sim_traces, out, cfg, workers=2)
    one = export_traces(sim_traces, tmp_path / "one", cfg)
    assert again.manifest.bundle_id == one.manifest.bundle_id


def test_the_temporary_folder_of_a_killed_export_is_removed_by_the_next(sim_traces, tmp_path):
    """Before, each killed export left its part of a bundle in ``--out`` for good (three kills of a
    300-run export: 153 MB of ``.bundle-*`` folders that no export removed)."""
    out = tmp_path / "bundles"
    p = cli("export", str(sim_traces), "--out", str(out))
    deadline = time.monotonic() + 30
    temps: list[Path] = []
    while not temps and p.poll() is None and time.monotonic() < deadline:
        temps = (
            [t for t in out.glob(".bundle-*") if any(t.rglob("*.jsonl"))] if out.is_dir() else []
        )
        time.sleep(0.002)
    assert temps and p.poll() is None, "the export ended before it could be killed midway"
    p.send_signal(signal.SIGKILL)
    p.wait(10)
    # the folder of an export still running (this process's pid) stays
    running = out / f".bundle-{os.getpid()}@{socket.gethostname()}-abcdefgh"
    running.mkdir()
    res = run_cli("export", str(sim_traces), "--out", str(out))
    assert res.returncode == 0, res.stderr
    assert (
        f"{temps[0]}: removed the temporary folder of an export that died (pid {p.pid})"
        in res.stderr
    )
    assert sorted(x.name for x in out.iterdir()) == sorted(
        [
            running.name,
            json.loads((next(out.glob("[0-9a-f]*")) / "manifest.json").read_text())["bundle_id"],
        ]
    )
