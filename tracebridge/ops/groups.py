"""Child commands in their own process group: stopped with whatever they started (``run_in_group``).

The shadow cycle's steps and the weekly cadence's run this way, so an interrupted, timed-out or
cancelled step leaves no process behind (a window could otherwise outlive its run holding a GPU
cluster).
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time


class CommandCancelled(RuntimeError):
    """``run_in_group`` stopped its command because its ``cancel`` event was set."""


def run_in_group(argv: list[str], env: dict[str, str] | None = None, timeout_s: float | None = None,
                 cancel: threading.Event | None = None, grace_s: float = 10.0) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` in its own process group and return what it printed, once it ended.
    The group (the command and whatever it started) is stopped, SIGTERM then SIGKILL after ``grace_s``,
    when it runs past ``timeout_s``, when ``cancel`` is set, or when this thread is interrupted
    (Ctrl-C, or SIGTERM under ``sigterm_as_interrupt``): no child outlives the command that started it.

    Raises:
        subprocess.TimeoutExpired: it ran past ``timeout_s``.
        CommandCancelled: ``cancel`` was set (the command was stopped; there is no result to return).
    """
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True)
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    try:
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
