"""``end_with_parent``: worker processes of a pool that end when the process that started the pool dies.

A ``ProcessPoolExecutor`` worker whose pool's process is SIGKILLed (or ended by a SIGTERM it does not
handle) is not told: it goes on with the tasks it holds, then waits for ever on a pipe nobody writes
or reads. Seen: ``import openclaw --workers 2`` killed mid-import left both workers writing runs beside
the import run again after the kill, then asleep in ``anon_pipe_write`` for good; ``export --workers 2``
left its two; ``collect`` (a forkserver pool) left its fork server and workers, which went on writing
runs into the trace root after the kill. A forked worker is killed by the kernel when its parent
dies (Linux ``PR_SET_PDEATHSIG``); a worker of a fork server (whose parent is the server) watches the
pool's process through a pidfd and exits when it ends.
"""

from __future__ import annotations

import ctypes
import os
import select
import signal
import sys
import threading
import time

_PR_SET_PDEATHSIG = 1
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None


def end_with_parent(parent: int) -> None:
    """Pool initializer: end this worker when the process ``parent`` (the pool's: ``os.getpid()`` there,
    passed in ``initargs``) dies, at once when it is gone already.

    Args:
        parent: the pid of the process that made the pool.
    """
    prctl = getattr(_LIBC, "prctl", None)
    if prctl is not None:
        prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    if os.getppid() == parent:
        return
    # a fork server's worker, or the parent died before prctl took effect: watch the pool's process
    fd: int | None = None
    try:
        fd = os.pidfd_open(parent)
    except ProcessLookupError:
        os._exit(1)
    except (AttributeError, OSError):  # no pidfd here (not Linux >= 5.3): poll the pid instead
        fd = None
    threading.Thread(
        target=_exit_when_gone, args=(parent, fd), name="end-with-parent", daemon=True
    ).start()


def _exit_when_gone(parent: int, fd: int | None) -> None:
    if fd is not None:
        select.select([fd], [], [])  # readable once the process has ended (a zombie too)
    else:
        while pid_alive(parent):
            time.sleep(0.5)
    os._exit(1)


def pid_alive(pid: object) -> bool:
    """Whether a process ``pid`` of this host exists (another user's counts; a zombie too): the one check of a
    lock holder's, a dead export's or a pool parent's pid. Not a positive int (a note's missing or bad field): no."""
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True
