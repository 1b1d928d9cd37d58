"""Runs open in this process, and what a fork does to them.

A process forked while a run is open does not write to it: the parent owns the run, and a child
writing the same ids (and its own ``session.json``) would corrupt it. After a fork, the child
disowns every run the parent had open: its emits are dropped and counted in the child, and it
writes no ``session.json``.
"""

from __future__ import annotations

import os
import threading
import weakref
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tracebridge.capture.recorder import Recorder

OPEN: weakref.WeakSet[Recorder] = weakref.WeakSet()  # a recorder adds itself on open, discards itself on close


def disown(rec: Recorder) -> None:
    """In a process forked while ``rec`` was open: give up the parent's run without writing to it. Later
    emits are dropped and counted; no ``session.json``."""
    rec._lock = threading.RLock()  # another thread of the parent may have held it at the fork
    rec._emitting, rec._close_after_emit = 0, None  # that thread's emit does not go on here
    rec._closed = True
    rec._lineage.close()
    rec._not_open = "the run belongs to the process that opened it (this one was forked from it)"
    writer, rec._writer = rec._writer, None
    if writer is not None:
        writer.fsync_on_close = False  # the parent's file: nothing of the child's to make durable
        writer.close()


def _disown_after_fork() -> None:
    for rec in list(OPEN):
        disown(rec)


os.register_at_fork(after_in_child=_disown_after_fork)
