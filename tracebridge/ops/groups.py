"""Child commands in their own process group: stopped with whatever they started (``run_in_group``).

The shadow cycle's steps and the weekly cadence's run this way, so an interrupted, timed-out or
cancelled step leaves no process behind (a window could otherwise outlive its run holding a GPU
cluster). A holder that dies by SIGKILL cannot stop them: its run lock's holder note lists them
(``on_start``), and the run that takes the lock over stops those still running (``stop_left_groups``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


class CommandCancelled(RuntimeError):
    """``run_in_group`` stopped its command because its ``cancel`` event was set."""


def run_in_group(argv: list[str], env: dict[str, str] | None = None, timeout_s: float | None = None,
                 cancel: threading.Event | None = None, grace_s: float = 10.0,
                 on_start: Callable[[int, list[str]], None] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` in its own process group and return what it printed, once it ended.
    The group (the command and whatever it started) is stopped, SIGTERM then SIGKILL after ``grace_s``,
    when it runs past ``timeout_s``, when ``cancel`` is set, or when this thread is interrupted
    (Ctrl-C, or SIGTERM under ``sigterm_as_interrupt``): no child outlives the command that started it.
    ``on_start(pid, argv)`` is told the group once it started (``tracebridge.ops.locks.note_child``), so a run
    that takes the lock over from a holder that died by SIGKILL can stop it.

    Raises:
        subprocess.TimeoutExpired: it ran past ``timeout_s``.
        CommandCancelled: ``cancel`` was set (the command was stopped; there is no result to return).
    """
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True)
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    try:
        if on_start is not None:  # in the try: if it raises (a full disk), the group is still stopped
            on_start(proc.pid, argv)
        while True:
            try:
                out, err = proc.communicate(timeout=0.5)
                return subprocess.CompletedProcess(argv, proc.returncode, out, err)
            except subprocess.TimeoutExpired:
                if cancel is not None and cancel.is_set():
                    raise CommandCancelled(f"{' '.join(argv[:4])}: stopped, its cancel event was set") from None
                if deadline is not None and time.monotonic() > deadline:
                    raise
    finally:
        if proc.poll() is None:
            _stop_group(proc, grace_s)


def _stop_group(proc: subprocess.Popen[str], grace_s: float) -> None:
    """SIGTERM ``proc``'s process group, SIGKILL it after ``grace_s`` if it is still there; reap it."""
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, None)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.communicate(timeout=wait_s)
            break
        except subprocess.TimeoutExpired:
            continue


def process_start(pid: int) -> str | None:
    """When process ``pid`` started (``/proc/<pid>/stat``'s starttime, clock ticks since boot): with the pid,
    it names one process (a pid is reused); None when it is gone, a zombie, or there is no ``/proc``."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return None if fields[0] == "Z" or len(fields) < 20 else fields[19]


def stop_left_groups(children: Any, grace_s: float = 10.0) -> list[str]:
    """Stop the process groups of a dead holder's note (``[{pgid, start, argv}]``) whose leader still runs
    (the same pid and start time: never a process that got its pid since): SIGTERM, SIGKILL after ``grace_s``.
    Return ``pgid N (command)`` of each one stopped."""
    out = []
    for c in children if isinstance(children, list) else []:
        pgid, start = (c.get("pgid"), c.get("start")) if isinstance(c, dict) else (None, None)
        if not isinstance(pgid, int) or start is None or process_start(pgid) != start:
            continue
        for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 0.0)):
            try:
                os.killpg(pgid, sig)
            except (ProcessLookupError, PermissionError):
                break
            end = time.monotonic() + wait_s
            while process_start(pgid) == start and time.monotonic() < end:
                time.sleep(0.1)
            if process_start(pgid) != start:
                break
        out.append(f"pgid {pgid} ({' '.join(map(str, c.get('argv') or []))[:200]})")
    return out
