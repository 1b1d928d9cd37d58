"""Run locks of the ops commands (the shadow cycle, shadow-prune, the weekly run, phase2-report): a file lock plus a
note of who holds it.

The lock is a ``FileLock`` (``flock``): the kernel lets it go when its process dies, so a dead
process never keeps it. While held, ``<lock>.holder`` (JSON: pid, host, since, command) says who
holds it, so a second run can name the holder in its error. The holder removes the note before
letting the lock go; a note found by the run that has just taken the lock was left by a run that
died holding it (SIGKILL, power loss): the new run takes over, says so in a warning, and returns
the dead holder's note so the caller can record it. The note also lists the process groups the holder
started (``note_child``): those a holder killed by SIGKILL left running (they are in their own sessions, so
the kernel does not stop them) are stopped by the run that takes over before it starts, or they would
write into its files, or hold a GPU window, beside it; the note it returns names them (``stopped_children``).
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
from filelock import FileLock, Timeout

from tracebridge.capture.writer import write_atomic
from tracebridge.ops.groups import process_start, stop_left_groups
from tracebridge.schema.canonical import utc_now

log = logging.getLogger(__name__)
HOLDER_SUFFIX = ".holder"
_NOTE_EDIT = threading.Lock()  # a cycle's steps start their commands from several threads


def holder_path(lock: Path) -> Path:
    """Where the note of ``lock``'s holder lives (beside it)."""
    return lock.with_name(lock.name + HOLDER_SUFFIX)


def read_holder(lock: Path) -> dict[str, Any] | None:
    """The holder note of ``lock``, or None when there is none; an unreadable note (a holder killed
    while writing it) is returned as ``{"unreadable": why}``, never raised."""
    p = holder_path(lock)
    try:
        doc = orjson.loads(p.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, orjson.JSONDecodeError) as exc:
        return {"unreadable": f"{p}: {exc}"}
    return doc if isinstance(doc, dict) else {"unreadable": f"{p}: not a JSON object"}


def describe_holder(note: dict[str, Any] | None) -> str:
    """``pid N on HOST since T (COMMAND)`` for messages; says so when no note is there (yet)."""
    if note is None:
        return "holder not recorded (it has just started)"
    if "unreadable" in note:
        return f"holder note unreadable: {note['unreadable']}"
    cmd = f" ({note['command']})" if note.get("command") else ""
    return f"pid {note.get('pid')} on {note.get('host')} since {note.get('since')}{cmd}"


def add_to_holder(lock: Path, **extra: Any) -> None:
    """Add ``extra`` to the holder note of ``lock``, which the caller holds (e.g. the cycle folder it writes)."""
    with _NOTE_EDIT:
        note = read_holder(lock)
        if note is None or "unreadable" in note:
            return
        write_atomic(holder_path(lock), orjson.dumps({**note, **extra}))


def note_child(lock: Path, pid: int, argv: list[str]) -> None:
    """Add a process group the holder of ``lock`` started (pid = pgid, its start time, its command) to the note,
    for ``run_lock`` to stop if the holder dies by SIGKILL and leaves it running."""
    child = {"pgid": pid, "start": process_start(pid), "argv": [str(a) for a in argv][:12]}
    with _NOTE_EDIT:
        note = read_holder(lock)
        if note is None or "unreadable" in note:
            return
        kids = note.get("children") if isinstance(note.get("children"), list) else []
        write_atomic(holder_path(lock), orjson.dumps({**note, "children": [*kids, child]}))


def flock_holders(path: Path) -> list[int]:
    """The pids holding a lock on the file ``path`` (a ``FileLock``'s flock), from ``/proc/locks``: read only, so a
    lock that keeps no holder note (the policy state's: a note would be one more write per change) can still be
    named. [] where ``/proc/locks`` is not there (not Linux) or the holder has just let go."""
    try:
        st = os.stat(path)
        table = Path("/proc/locks").read_text()
    except OSError:
        return []
    where = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    pids = []
    for line in table.splitlines():  # "1: FLOCK  ADVISORY  WRITE 3823 fe:00:2335453 0 EOF"; "1: -> FLOCK ..." waits
        f = line.split()
        if len(f) > 5 and f[1] != "->" and f[5] == where and f[4].isdigit() and int(f[4]) > 0:
            pids.append(int(f[4]))  # an OFD lock has no pid (-1)
    return sorted(set(pids))


def describe_flock_holders(path: Path) -> str:
    """``pid N (COMMAND LINE)`` of each holder of ``path``'s lock (``flock_holders``), for messages; "" when none
    is found. The command line is on one line (its arguments' own newlines too), left out where it cannot be
    read (another user's process under hidepid)."""
    out = []
    for pid in flock_holders(path):
        try:
            cmd = " ".join(Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").replace("\0", " ").split())
        except OSError:
            cmd = ""
        out.append(f"pid {pid}" + (f" ({cmd[:300]})" if cmd else ""))
    return ", ".join(out)


@contextmanager
def run_lock(lock: Path, busy: str, timeout: float, error: type[Exception] = RuntimeError,
             message: str | None = None) -> Iterator[dict[str, Any] | None]:
    """Hold ``lock`` (waiting up to ``timeout`` s) with a holder note for the block; yield the note a
    dead holder left (the lock was taken over from it), else None.

    Raises:
        error: another process holds the lock; the message names the lock file, ``busy`` and the
            holder's pid (nothing was done); ``message``, when given, replaces ``<lock>: <busy>``.
    """
    fl = FileLock(str(lock), timeout=timeout)
    try:
        fl.acquire()
    except Timeout as exc:
        note = read_holder(lock)  # none yet: the holder has just taken the lock; the kernel still knows it
        who = describe_holder(note) if note is not None else (
            f"{found} (its holder note is not written yet)" if (found := describe_flock_holders(lock))
            else describe_holder(None))
        raise error(f"{message or f'{lock}: {busy}'}; held by {who}") from exc
    try:
        stale = read_holder(lock)
        if stale is not None:
            log.warning("%s: took over the lock from %s, which died holding it (the kernel released it)",
                        lock, describe_holder(stale))
            if stale.get("host") == socket.gethostname() and (left := stop_left_groups(stale.get("children"))):
                log.warning("%s: stopped what the dead holder had started and left running: %s", lock, "; ".join(left))
                stale = {**stale, "stopped_children": left}
        note = {"pid": os.getpid(), "host": socket.gethostname(), "since": utc_now(),
                "command": " ".join(sys.argv)[:300]}
        write_atomic(holder_path(lock), orjson.dumps(note))
        yield stale
    finally:
        holder_path(lock).unlink(missing_ok=True)  # before the lock goes: a note never outlives its holder
        fl.release()
