"""Runs open in this process, and what a fork does to them.

A process forked while a run is open does not write to it: the parent owns the run, and a child
writing the same ids (and its own ``session.json``) would corrupt it. After a fork, the child
disowns every run the parent had open: its emits are dropped and counted in the child, and it
writes no ``session.json``.
"""

from __future__ import annotations

import os
import weakref
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tracebridge.capture.recorder import Recorder

OPEN: weakref.WeakSet[Recorder] = weakref.WeakSet()  # a recorder adds itself on open, discards itself on close


def _disown_after_fork() -> None:
    for rec in list(OPEN):
        rec.disown()


os.register_at_fork(after_in_child=_disown_after_fork)
