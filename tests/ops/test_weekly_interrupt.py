"""``ops weekly`` stopped by SIGTERM (``systemctl stop``, ``timeout``) stops its running step's process
group (the ``window`` command and what it started) before it exits 130: before, weekly died at once and
the window went on as an orphan, holding a paid GPU cluster with nobody to tear it down."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.conftest import record_sample_run
from tests.ops.test_cycle_interrupt import STUB, _alive, _wait_for, interrupt_and_reap

ROOT = Path(__file__).resolve().parents[2]
# export and push end at once; window (the stand-in of `tracebridge window`) runs STUB: it never ends
BIN = "import runpy, sys\nif sys.argv[1] == 'window':\n    runpy.run_path(sys.argv[0] + '.stub')\n"


def test_sigterm_stops_the_running_window_and_its_children(tmp_path: Path) -> None:
    record_sample_run(tmp_path / "traces")
    fake, pids = tmp_path / "fake_tb.py", tmp_path / "pids.json"
    fake.write_text(BIN)
    Path(str(fake) + ".stub").write_text(STUB)
    cmd = [sys.executable, "-m", "tracebridge.cli", "ops", "weekly", "--config", str(ROOT / "configs/ops/weekly.yaml"),
           "--bin", f"{sys.executable} {fake}", "agree_with=[]", f"weekly.traces={tmp_path}/traces",
           f"weekly.bundles_dir={tmp_path}/bundles", f"weekly.artifacts_dir={tmp_path}/artifacts",
           "weekly.feedback_ledger=null", "--json"]
    proc, leftover = interrupt_and_reap(cmd, pids)
    assert not leftover, f"the window of the interrupted weekly run outlived it (exit {proc.returncode})"
    assert proc.returncode == 130, (proc.stdout, proc.stderr)
    doc = json.loads(proc.stdout)
    assert doc["exit_code"] == 130 and doc["error"].startswith("weekly run interrupted (SIGTERM)"), doc
    assert not (tmp_path / "artifacts").exists() or not list((tmp_path / "artifacts").rglob("manifest.json"))


def test_a_weekly_run_killed_by_sigkill_leaves_its_window_until_the_next_run_stops_it(tmp_path: Path) -> None:
    # SIGKILL cannot be caught: the window, in its own session, ran on holding its cluster, and the rerun took the
    # lock over and started a second window beside it
    record_sample_run(tmp_path / "traces")
    fake, done, pids = tmp_path / "fake_tb.py", tmp_path / "done_tb.py", tmp_path / "pids.json"
    fake.write_text(BIN)
    done.write_text("")  # every command of the rerun ends at once, ok
    Path(str(fake) + ".stub").write_text(STUB)
    args = ["ops", "weekly", "--config", str(ROOT / "configs/ops/weekly.yaml"), "agree_with=[]",
            f"weekly.traces={tmp_path}/traces", f"weekly.bundles_dir={tmp_path}/bundles",
            f"weekly.artifacts_dir={tmp_path}/artifacts", "weekly.feedback_ledger=null", "--json"]
    cli = [sys.executable, "-m", "tracebridge.cli"]
    proc = subprocess.Popen([*cli, *args, "--bin", f"{sys.executable} {fake}"], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "STUB_PIDS": str(pids)})
    try:
        _wait_for(pids, proc)
        window, grandchild = json.loads(pids.read_text())
        proc.kill()
        proc.communicate(timeout=60)
        assert _alive(window) and _alive(grandchild)  # what SIGKILL leaves behind
        rerun = subprocess.run([*cli, *args, "--bin", f"{sys.executable} {done}"], cwd=ROOT, capture_output=True,
                               text=True, timeout=120, check=False)
        assert rerun.returncode == 0, rerun.stderr
        assert not _alive(window) and not _alive(grandchild), "the rerun ran beside the killed run's window"
        man = json.loads(next((tmp_path / "artifacts").rglob("manifest.json")).read_text())
        assert [s.split(" ")[:2] for s in man["lock"]["took_over_from"]["stopped_children"]] == [["pgid", str(window)]]
    finally:
        for p in (json.loads(pids.read_text()) if pids.exists() else []):
            if _alive(p):
                os.kill(p, signal.SIGKILL)
