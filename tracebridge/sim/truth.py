"""Ground truth of one episode, kept by the orchestrator from what really happened in the sandbox.

``Truth`` tracks which reference-plan steps are done (a successful call with the reference
step's tool and its arguments or its output), whether an unsatisfiable goal has shown its
impossibility (the reference call failed with a blocking error kind, not an injected fault),
and answers three questions: the verdict a correct verifier gives now (the rules of
docs/trace-conventions.md), the call a correct worker makes for a plan step, and the rest of
the reference plan a correct planner writes.
"""

from __future__ import annotations

from typing import Any

from tracebridge.schema.canonical import canonical_json
from tracebridge.sim.families.base import Family, Task
from tracebridge.sim.tools import Sandbox, ToolOutcome


def _same(a: Any, b: Any) -> bool:
    return canonical_json(a) == canonical_json(b)


class Truth:
    """Ground truth of one episode; see the module docstring."""

    def __init__(self, family: Family, task: Task, sandbox: Sandbox) -> None:
        self.family, self.task, self.sandbox = family, task, sandbox
        self.done = [False] * len(task.steps)
        self.witnessed: str | None = None  # the blocking error seen, once seen

    def record(self, tool: str, args: Any, outcome: ToolOutcome) -> None:
        """Account for one tool call and its outcome."""
        for i, st in enumerate(self.task.steps):
            if self.done[i] or st.tool != tool:
                continue
            if outcome.ok and (_same(args, st.args) or (st.output is not None and _same(outcome.output, st.output))):
                self.done[i] = True
                return
            if (not outcome.ok and self.task.unsatisfiable and outcome.injected is None and outcome.error
                    and outcome.error.kind in self.task.blocking and _same(args, st.args)):
                self.witnessed = outcome.error.message
                return

    def goal_met(self) -> bool:
        """The family's checker on the sandbox as it is now."""
        return self.family.check(self.task, self.sandbox)

    def expected_verdict(self, step_status: str, steps_left: int) -> str:
        """The verdict a correct verifier gives after a cycle.

        Args:
            step_status: the worker's status for the step (done | failed).
            steps_left: plan steps after the current one.
        """
        if self.goal_met():
            return "end"
        if self.witnessed is not None:
            return "end"  # unsatisfiable and shown to be: more work is futile
        if step_status != "done" or steps_left <= 0:
            return "replan"
        return "continue"

    def expected_call(self, plan_tool: str | None) -> dict[str, Any] | None:
        """The reference call for a plan step: the first open reference step with the step's tool,
        else the next open reference step. None when every step is done."""
        open_steps = [st for i, st in enumerate(self.task.steps) if not self.done[i]]
        match = next((st for st in open_steps if st.tool == plan_tool), open_steps[0] if open_steps else None)
        if match is None:
            return None
        return {"expected_tool": match.tool, "expected_args": match.args}

    def reference_plan(self) -> list[dict[str, Any]]:
        """The open reference steps from the first one not done, in plan form (with references)."""
        first = next((i for i, d in enumerate(self.done) if not d), len(self.done))
        return [st.plan_step(j) for j, st in enumerate(self.task.steps[first:])]

    def first_open(self) -> int:
        """The index of the first reference step not yet done (the step count when all are)."""
        return next((i for i, d in enumerate(self.done) if not d), len(self.done))
