"""Process helpers of the kill and full-disk tests: a process's children, whether a pid still runs (Linux ``/proc``),
the command line run in a child, a small tmpfs (a real full disk)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def cli(*args: str) -> subprocess.Popen[bytes]:
    """``python -m tracebridge.cli ARGS`` in a child, from the repository root, output discarded."""
    return subprocess.Popen(
        [sys.executable, "-m", "tracebridge.cli", *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _stat(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def children(pid: int) -> list[int]:
    """The pids whose parent is ``pid``."""
    return [
        int(d)
        for d in os.listdir("/proc")
        if d.isdigit() and (_stat(int(d)) or ["", ""])[1] == str(pid)
    ]


def descendants(pid: int) -> list[int]:
    """``pid``'s children, theirs, and so on."""
    out, todo = [], [pid]
    while todo:
        kids = children(todo.pop())
        out += kids
        todo += kids
    return out


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie does not)."""
    st = _stat(pid)
    return st is not None and st[0] != "Z"


def wait_gone(pids: list[int], timeout: float = 5.0) -> list[int]:
    """Wait until none of ``pids`` runs; return (and SIGKILL, not to leave them behind) those that still do."""
    deadline = time.monotonic() + timeout
    while any(map(alive, pids)) and time.monotonic() < deadline:
        time.sleep(0.02)
    left = [p for p in pids if alive(p)]
    for p in left:
        os.kill(p, signal.SIGKILL)
    return left


def run_in_repo(argv: list[str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``argv`` run to its end from the repository root with this checkout importable, output captured as text."""
    return subprocess.run(argv, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True,
                          text=True, timeout=timeout, check=False)


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """``python -m tracebridge.cli ARGS`` run to its end (``run_in_repo``)."""
    return run_in_repo([sys.executable, "-m", "tracebridge.cli", *args])


def kill_once_workers_run(p: subprocess.Popen[bytes], n: int, what: str) -> list[int]:
    """SIGKILL ``p`` once its ``n`` pool workers run (within 30 s); return their pids (the test then checks
    they end with it: ``wait_gone``)."""
    workers: list[int] = []
    deadline = time.monotonic() + 30
    while len(workers) < n and p.poll() is None and time.monotonic() < deadline:
        workers = children(p.pid)
        time.sleep(0.002)
    assert len(workers) == n, f"the {what} ended before its workers could be seen"
    p.send_signal(signal.SIGKILL)
    p.wait(10)
    return workers


@contextmanager
def small_tmpfs(size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` (``32k``) mounted for the block: a real full disk (root only; skips the test
    otherwise)."""
    import pytest

    mnt = tempfile.mkdtemp(prefix="tb-full-")
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tb-test", mnt], capture_output=True,
                         text=True, check=False)
    if res.returncode != 0:
        os.rmdir(mnt)
        pytest.skip(f"cannot mount a tmpfs here (needs root): {res.stderr.strip()}")
    try:
        yield Path(mnt)
    finally:
        subprocess.run(["umount", mnt], capture_output=True, check=False)
        os.rmdir(mnt)
