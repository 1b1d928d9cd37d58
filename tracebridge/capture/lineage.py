"""Event ids and causal parents of one recorded run: the bookkeeping behind ``Recorder.emit``.

Ids are ``<run_id>:<seq>`` with a zero-padded sequence number, issued in file order. An event's
default parent is the previous event *of the thread that emits it* (the run's previous event for a
thread's first), so a thread's action → call → result chain stays its own. A run has one root (the
event without a parent). An event that was dropped (fail-open) never reaches the file, so its
children attach to its own parent instead: the lineage on disk has no hole. A dropped root's children
attach to the run's root, the first of them written when there is none yet. Not thread-safe on its
own: the recorder calls it under its lock.
"""

from __future__ import annotations

import threading
from typing import Any


class LineageError(ValueError):
    """An explicit parent the run cannot hold: not an earlier event of it, or a second root."""


class Lineage:
    """Issues event ids and resolves parents for one run.

    Args:
        run_id: the run's id, the prefix of every event id.
    """

    __slots__ = ("_by_thread", "_dropped", "_last", "root", "run_id", "seq")

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self.seq = 0  # events issued (written and dropped)
        self.root: str | None = None
        self._last: str | None = None  # the run's previous written event
        self._by_thread: dict[int, str] = {}  # each thread's previous written event
        self._dropped: dict[str, str | None] = {}  # dropped event -> the parent it would have had

    def issue(self) -> tuple[str, int, str | None]:
        """A new event id, the calling thread's id and its default parent (where a dropped
        event's children attach if the parent passed turns out bad)."""
        self.seq += 1
        thread = threading.get_ident()
        return f"{self.run_id}:{self.seq:06d}", thread, self._by_thread.get(thread, self._last)

    def parent(self, explicit: Any, default: str | None, auto: bool) -> str | None:
        """The parent written for a new event: ``default`` when ``auto``, else ``explicit`` (None
        for the root, or an earlier event's id); a dropped event stands in for its own parent, and a
        dropped root for the run's root (None, making this event the root, while there is none).

        Raises:
            LineageError: ``explicit`` is no earlier event of this run, or the run has a root already.
        """
        resolved = default if auto else self._earlier(explicit)
        if resolved not in self._dropped:
            if resolved is None and self.root is not None:
                raise LineageError("a run has one root; pass parent=")
            return resolved
        while resolved in self._dropped:  # keep lineage intact around dropped events
            resolved = self._dropped[resolved]
        # a dropped root's children: the first one written becomes the root, the others attach to it (only
        # an explicit parent=None asks for a root, and a run has one)
        return self.root if resolved is None else resolved

    def written(self, event_id: str, thread: int, parent: str | None) -> None:
        """Record that ``event_id`` (child of ``parent``) reached the file."""
        self._last = self._by_thread[thread] = event_id
        if parent is None:
            self.root = event_id

    def dropped(self, event_id: str, parent: str | None) -> None:
        """Record that ``event_id`` was not written: its children attach to ``parent``."""
        self._dropped[event_id] = parent

    def _earlier(self, parent: Any) -> str | None:
        """``parent`` when it is None (the root) or names an event issued before; any other id
        would be written as broken lineage, which quarantines the whole run."""
        if parent is None:
            return None
        seq = parent.rpartition(":")[2] if isinstance(parent, str) else ""
        if seq.isdecimal() and int(seq) < self.seq and parent == f"{self.run_id}:{int(seq):06d}":
            return parent
        raise LineageError(f"parent {parent!r} is not an earlier event of this run")
