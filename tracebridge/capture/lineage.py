"""Event ids and causal parents of one recorded run: the bookkeeping behind ``Recorder.emit``.

Ids are ``<run_id>:<seq>`` with a zero-padded sequence number, issued in file order. An event's
default parent is the previous event *of the thread or asyncio task that emits it*, so a thread's (a
task's) action → call → result chain stays its own. It is kept in a ``contextvars`` context: a new
thread starts with none (its first event's default is the run's previous event), an asyncio task
starts with its creator's (its first event's default is the event its creator emitted last), and a
thread that reuses a dead thread's id inherits nothing from it. A run has one root (the
event without a parent). An event that was dropped (fail-open) never reaches the file, so its
children attach to its own parent instead: the lineage on disk has no hole. A dropped root's children
attach to the run's root, the first of them written when there is none yet. Not thread-safe on its
own: the recorder calls it under its lock.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from contextvars import ContextVar
from types import MappingProxyType
from typing import Any

# Each context's previous written event, by lineage (its serial number): set anew on every write, so a
# task's or thread's copy of the context never sees another's writes. Lineages of closed runs are left
# out at the next write, so a long-lived thread does not keep an entry per run it ever recorded.
_PREVIOUS: ContextVar[Mapping[int, str]] = ContextVar("tracebridge_previous_event", default=MappingProxyType({}))
_SERIALS = itertools.count(1)
_OPEN: set[int] = set()  # serial numbers of the lineages not closed yet


class LineageError(ValueError):
    """An explicit parent the run cannot hold: not an earlier event of it, or a second root."""


class Lineage:
    """Issues event ids and resolves parents for one run.

    Args:
        run_id: the run's id, the prefix of every event id.
    """

    __slots__ = ("_dropped", "_key", "_last", "root", "run_id", "seq")

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self.seq = 0  # events issued (written and dropped)
        self.root: str | None = None
        self._last: str | None = None  # the run's previous written event
        self._key = next(_SERIALS)  # its entry in each context's previous events (``_PREVIOUS``)
        _OPEN.add(self._key)
        self._dropped: dict[str, str | None] = {}  # dropped event -> the parent it would have had

    def issue(self) -> tuple[str, str | None]:
        """A new event id and its default parent: the previous event written in the calling context
        (thread or task), else the run's (where a dropped event's children attach if the parent passed
        turns out bad)."""
        self.seq += 1
        return f"{self.run_id}:{self.seq:06d}", _PREVIOUS.get().get(self._key, self._last)

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

    def written(self, event_id: str, parent: str | None) -> None:
        """Record that ``event_id`` (child of ``parent``) reached the file, in the calling context."""
        self._last = event_id
        previous = _PREVIOUS.get()
        if len(previous) == 1 and self._key in previous:  # the common case, one run in this context: ~0.2 µs less
            _PREVIOUS.set({self._key: event_id})
        else:
            _PREVIOUS.set({**{k: v for k, v in previous.items() if k in _OPEN}, self._key: event_id})
        if parent is None:
            self.root = event_id

    def close(self) -> None:
        """The run is over: its entries leave each context's previous events at their next write."""
        _OPEN.discard(self._key)

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
