"""``submit`` stopped by SIGTERM (``timeout``, a supervisor, ``systemctl stop``) or SIGHUP (its terminal or SSH
session closed) stops the local head it started, as Ctrl-C does: before, the process died at once and the head
(its own process group) kept running with the job, recorded in state_dir, and nothing ever stopped it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.ray_fixtures import BUNDLE, ROOT


def _live_members(pgid: int) -> list[int]:
    """Pids of the process group ``pgid`` that are not zombies."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            found.append(int(stat.parent.name))
    return found


# SIGTERM only: SIGHUP takes the same path (sigterm_as_interrupt turns both into KeyboardInterrupt, tested in
# tests/cli/test_sigterm_as_interrupt.py); a second local head here cost ~17 s of CI
@pytest.mark.parametrize("sig", [signal.SIGTERM], ids=["SIGTERM"])
def test_sigterm_stops_the_local_head_submit_started(tmp_path: Path, sig: signal.Signals) -> None:
    state, err = tmp_path / "ray", tmp_path / "submit.err"
    cmd = [sys.executable, "-m", "tracebridge.cli", "submit", "configs/sweep/smoke.yaml", f"bundle={BUNDLE}",
           f"storage={tmp_path}/storage", f"work_dir={tmp_path}/work", "--cluster-set", f"state_dir={state}", "--json"]
    with err.open("w") as stderr:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=stderr, text=True)
    head = None
    try:
        end = time.monotonic() + 300
        while "submitted smoke-" not in err.read_text():
            assert proc.poll() is None, (proc.communicate(), err.read_text())
            assert time.monotonic() < end, err.read_text()
            time.sleep(0.2)
        head = json.loads((state / "head.json").read_text())
        proc.send_signal(sig)
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
        left = _live_members(head["pid"]) if head else []
        for pid in left:  # the head the old code left behind: stop it here, then fail
            os.kill(pid, signal.SIGKILL)
    assert not left, f"the local head outlived the interrupted submit: {left}"
    assert proc.returncode == 130, (out, err.read_text())
    doc = json.loads(out)
    assert doc["exit_code"] == 130 and doc["error"].startswith(f"submit interrupted ({sig.name})"), doc
    assert "--resume" in doc["error"]
    assert not (state / "head.json").exists()  # nothing recorded points at a dead head
