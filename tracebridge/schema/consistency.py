"""Consistency of one run's events beyond its lineage (DESIGN's roles and tool-call protocol), fed in
file order by ``tracebridge.schema.validate.check_run``:

* ``unmatched_tool_result``: a ``worker_tool_result`` answers an earlier ``worker_tool_call`` of the run
  (its ``payload.call_id``), and its ``retry_of`` names an earlier call;
* ``step_backwards``: ``step`` (the orchestrator cycle) never goes back within a run;
* ``role_mismatch``: an event type of a role (``planner_*``, ``worker_*``, ``verifier_*``) is recorded
  under that role (the other types, errors, observations and transitions, belong to any role).

Each is a problem of its own kind (named as its quality rule), so ``validate`` lists it at its
``file:line:field`` and the export quarantines the run unless ``quality.allow`` names the rule.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

CONSISTENCY_RULES = ("unmatched_tool_result", "step_backwards", "role_mismatch")
ROLE_PREFIXES = frozenset({"planner", "worker", "verifier"})


class Consistency:
    """The checks above for one run.

    Args:
        report: called with ``(line, field, message, kind)`` for each problem, as it is found.
    """

    def __init__(self, report: Callable[[int, str, str, str], None]) -> None:
        self._problem = report
        self.calls: set[str] = set()
        self.last_step: tuple[int, int] | None = None  # (highest step so far, its line)

    def add(self, lineno: int, obj: dict[str, Any]) -> None:
        """Check one event against the events before it."""
        et, role, step = obj.get("event_type"), obj.get("role"), obj.get("step")
        if isinstance(et, str) and isinstance(role, str):
            owner = et.split("_", 1)[0]
            if owner in ROLE_PREFIXES and role != owner:
                self._problem(lineno, "role", f"{et} recorded under role {role!r}: a {owner} event", "role_mismatch")
        if isinstance(step, int) and not isinstance(step, bool):
            if self.last_step is not None and step < self.last_step[0]:
                self._problem(lineno, "step", f"step {step} after step {self.last_step[0]} (line {self.last_step[1]}): "
                              "a run's steps never go back", "step_backwards")
            elif self.last_step is None or step > self.last_step[0]:
                self.last_step = (step, lineno)
        payload = obj.get("payload")
        if not isinstance(payload, dict):
            return
        if et == "worker_tool_call" and isinstance(payload.get("call_id"), str):
            self.calls.add(payload["call_id"])
        elif et == "worker_tool_result":
            for key in ("call_id", "retry_of"):
                cid = payload.get(key)
                if isinstance(cid, str) and cid not in self.calls:
                    self._problem(lineno, f"payload.{key}", f"{cid!r} names no earlier worker_tool_call of the run",
                                  "unmatched_tool_result")
