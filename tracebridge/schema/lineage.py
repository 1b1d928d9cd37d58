"""Lineage of one run's events (DESIGN): exactly one root (``parent_event_id`` null and
``root: true``), every other event's parent an earlier event of the same run, unique ids, no
cycles. ``Lineage`` is fed the events in file order by ``tracebridge.schema.validate.check_run``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def _cycle(eid: str, parents: dict[str, Any]) -> list[str]:
    """The ids on a parent-chain cycle through ``eid`` (empty if none)."""
    chain: list[str] = []
    cur: Any = eid
    while isinstance(cur, str) and cur in parents and cur not in chain:  # a non-string parent ends the chain
        chain.append(cur)
        cur = parents[cur]
    return chain[chain.index(cur):] if cur in chain else []


def _classify_dangling(eid: str, parent: str, parents: dict[str, Any], run_id: str) -> str:
    if parent in parents:
        cyc = _cycle(eid, parents)
        if cyc:
            return f"cycle in parent chain: {' -> '.join(cyc + [cyc[0]])}"
        return f"parent {parent!r} appears later in the run (must be earlier)"
    if ":" in parent and parent.rsplit(":", 1)[0] != run_id:
        return f"parent {parent!r} belongs to another run ({parent.rsplit(':', 1)[0]!r})"
    return f"parent {parent!r} not found in this run"


class Lineage:
    """Lineage bookkeeping of one run's events, fed in file order (DESIGN: one root, earlier parents).

    Args:
        run_id: the run the events belong to.
        report: called with ``(line, field, message)`` for each problem, as it is found (so the
            caller's problem list stays in file order).
    """

    def __init__(self, run_id: str, report: Callable[[int | None, str, str], None]) -> None:
        self.run_id, self._problem, self.valid = run_id, report, 0  # valid: events with valid lineage
        self.parents: dict[str, Any] = {}  # event_id -> parent, in file order
        self.lines: dict[str, int] = {}
        self.dangling: list[tuple[str, str]] = []
        self.root_seen: str | None = None
        self.valid_ids: set[str] = set()

    def add(self, lineno: int, obj: dict[str, Any]) -> None:
        """Check one event's id, run and parent against the events before it."""
        parents = self.parents
        eid, parent = obj.get("event_id"), obj.get("parent_event_id")
        ok = isinstance(eid, str)
        if not ok:
            self._problem(lineno, "event_id", "missing or not a string")
        elif eid in parents:
            ok = False
            self._problem(lineno, "event_id", f"duplicate id {eid!r} (first on line {self.lines[eid]})")
        if obj.get("run_id") not in (None, self.run_id):
            ok = False
            self._problem(lineno, "run_id", f"event of run {obj.get('run_id')!r} in run {self.run_id!r}")
        if parent is None:
            if self.root_seen is not None:
                ok = False
                self._problem(lineno, "parent_event_id", f"second root (first root is {self.root_seen!r})")
            elif obj.get("root") is not True:
                ok = False
                self._problem(lineno, "root", "parentless event must be marked root: true")
            elif isinstance(eid, str):
                self.root_seen = eid
        elif not isinstance(parent, str) or parent not in parents:
            ok = False
            if isinstance(parent, str) and isinstance(eid, str):
                self.dangling.append((eid, parent))
                self.lines[eid] = lineno
            else:
                self._problem(lineno, "parent_event_id", "not a string")
        if parent is not None and obj.get("root") is True:  # DESIGN: only the parentless root sets root: true
            ok = False
            self._problem(lineno, "root", f"root: true on an event with a parent ({parent!r})")
        if isinstance(eid, str) and eid not in parents:
            parents[eid] = parent
            self.lines.setdefault(eid, lineno)
        if ok:
            self.valid += 1
            if isinstance(eid, str):
                self.valid_ids.add(eid)

    def finish(self, events: int) -> None:
        """Place the parents that never came earlier (later, elsewhere, cycles) and check that a run
        of ``events`` events has a root."""
        for eid, parent in self.dangling:
            self._problem(self.lines[eid], "parent_event_id",
                          _classify_dangling(eid, parent, self.parents, self.run_id))
            for member in _cycle(eid, self.parents):  # an earlier parent on a cycle is no valid lineage
                if member in self.valid_ids:
                    self.valid_ids.discard(member)
                    self.valid -= 1
        if events and self.root_seen is None:
            self._problem(None, "root", "run has no root event")
