"""A shadow cycle stopped by SIGTERM (``systemctl stop``, ``timeout``, a supervisor) stops its steps'
child processes, and theirs, before it exits 130 and frees the lock: before, the cycle died at once and
its running step went on as an orphan, writing into the work dir while the next cycle held the lock."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from filelock import FileLock

from tracebridge.ops.cycle import LOCK
from tracebridge.ops.shadow_steps import STEPS

ROOT = Path(__file__).resolve().parents[2]
# a stand-in `tracebridge` for the steps: it starts a grandchild, records both pids, and never ends
STUB = """import json, os, subprocess, sys, time
kid = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
open(os.environ["STUB_PIDS"] + ".tmp", "w").write(json.dumps([os.getpid(), kid.pid]))
os.replace(os.environ["STUB_PIDS"] + ".tmp", os.environ["STUB_PIDS"])
time.sleep(600)
"""


def _alive(pid: int) -> bool:
    """The process exists and is not a zombie waiting for its (new) parent to reap it."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def _wait_for(path: Path, proc: subprocess.Popen[str], limit_s: float = 120) -> None:
    end = time.monotonic() + limit_s
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < end, f"the step never started ({path} not written)"
        time.sleep(0.1)


def interrupt_and_reap(cmd: list[str], pids: Path) -> tuple[subprocess.CompletedProcess[str], list[int]]:
    """Run ``cmd`` (whose step runs ``STUB``, writing its and its child's pids to ``pids``), send it SIGTERM
    once the step runs, and return what it printed and the stub's processes that outlived it (killed now)."""
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "STUB_PIDS": str(pids)})
    try:
        _wait_for(pids, proc)
        step, grandchild = json.loads(pids.read_text())
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    leftover = [p for p in (step, grandchild) if _alive(p)]
    for p in leftover:
        os.kill(p, signal.SIGKILL)
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err), leftover


def _cycle(tmp_path: Path) -> tuple[list[str], Path, list[str]]:
    """A shadow-cycle command whose steps run the stub (it notes its and a grandchild's pid in the file
    returned), less its ``shadow.skip``, and the steps to skip so that only runtime_hook runs."""
    stub, pids = tmp_path / "stub.py", tmp_path / "pids.json"
    stub.write_text(STUB)
    base = [sys.executable, "-m", "tracebridge.cli", "shadow-cycle", "--config", str(ROOT / "configs/ops/shadow.yaml"),
            "--bin", f"{sys.executable} {stub}", f"artifacts_dir={tmp_path}/artifacts",
            f"shadow.work_dir={tmp_path}/shadow", "shadow.retention.enabled=false", "--json"]
    return base, pids, [s.name for s in STEPS if s.name != "runtime_hook"]


def test_sigterm_stops_the_running_steps_and_frees_the_lock(tmp_path: Path) -> None:
    base, pids, skip = _cycle(tmp_path)
    proc, leftover = interrupt_and_reap([*base, f"shadow.skip=[{','.join(skip)}]"], pids)
    assert not leftover, f"a step of the interrupted cycle outlived it (exit {proc.returncode})"
    assert proc.returncode == 130, (proc.stdout, proc.stderr)
    doc = json.loads(proc.stdout)
    assert doc["exit_code"] == 130 and doc["error"].startswith("shadow cycle interrupted (SIGTERM)"), doc
    lock = FileLock(str(tmp_path / "shadow" / LOCK), timeout=0)
    lock.acquire()  # free: the next cycle can run
    lock.release()
    (cycle,) = (tmp_path / "artifacts").iterdir()
    assert not (cycle / "manifest.json").exists()  # what the review counts as a crashed cycle


def test_a_cycle_killed_by_sigkill_leaves_its_step_running_until_the_next_cycle_stops_it(tmp_path: Path) -> None:
    # SIGKILL (kill -9, the OOM killer, a supervisor's last resort) cannot be caught: the step's command runs on
    # in its own session, an orphan. The lock went with the cycle, so the rerun took it over and ran beside the
    # orphan, which went on writing into the work dir (in cluster mode: holding its GPU window) for hours
    base, pids, skip = _cycle(tmp_path)
    proc = subprocess.Popen([*base, f"shadow.skip=[{','.join(skip)}]"], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "STUB_PIDS": str(pids)})
    try:
        _wait_for(pids, proc)
        step, grandchild = json.loads(pids.read_text())
        proc.kill()
        proc.communicate(timeout=60)
        assert _alive(step) and _alive(grandchild)  # what SIGKILL leaves behind
        rerun = subprocess.run([*base, f"shadow.skip=[{','.join(s.name for s in STEPS)}]"], cwd=ROOT,
                               capture_output=True, text=True, timeout=120, check=False)
        assert rerun.returncode == 0, rerun.stderr
        assert not _alive(step) and not _alive(grandchild), "the rerun ran beside the killed cycle's step"
        took_over = json.loads((Path(json.loads(rerun.stdout)["path"]) / "manifest.json").read_text())["lock"]
        assert took_over["took_over_from"]["pid"] == proc.pid
        assert [s.split(" ")[:2] for s in took_over["took_over_from"]["stopped_children"]] == [["pgid", str(step)]]
        assert "stopped what the dead holder had started" in rerun.stderr
    finally:
        for p in (json.loads(pids.read_text()) if pids.exists() else []):
            if _alive(p):
                os.kill(p, signal.SIGKILL)


def test_a_group_whose_start_cannot_be_noted_is_stopped_not_left_running(tmp_path: Path) -> None:
    # noting the step's process group in the lock's holder note can fail (a full disk): the error left the
    # command running unattended, outside the loop that stops it
    from tracebridge.ops.groups import run_in_group

    started: list[int] = []

    def note(pid: int, argv: list[str]) -> None:
        started.append(pid)
        raise OSError(28, "No space left on device")

    try:
        run_in_group([sys.executable, "-c", "import time; time.sleep(600)"], grace_s=1.0, on_start=note)
    except OSError:
        pass
    assert started and not _alive(started[0])
