"""Process helpers of the kill tests: a process's children and whether a pid still runs (Linux ``/proc``)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
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
