"""A run lock found taken before its holder wrote its note said "holder not recorded (it has just started)"; the
kernel knows the holder then too (``/proc/locks``), so the refusal names its pid and command line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tracebridge.ops.locks import holder_path, run_lock

HOLD = """
import sys, time
from filelock import FileLock
held = FileLock(sys.argv[1])
held.acquire()
print("held", flush=True)
time.sleep(60)
"""


@pytest.mark.skipif(not Path("/proc/locks").exists(), reason="reads /proc/locks (Linux)")
def test_a_lock_taken_without_a_note_names_its_holder_from_the_kernel(tmp_path):
    lock = tmp_path / ".cycle.lock"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(lock), "tb-holder-marker"], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert not holder_path(lock).exists()  # the moment between taking the lock and writing the note
        with pytest.raises(RuntimeError) as exc, run_lock(lock, "another run holds it", timeout=0.2):
            pass
        said = str(exc.value)
        assert f"held by pid {holder.pid} (" in said and "tb-holder-marker" in said, said
        assert "its holder note is not written yet" in said
    finally:
        holder.kill()
        holder.wait()
